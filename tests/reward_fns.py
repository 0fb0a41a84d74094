"""Reward functions for the ``python:module:function`` reward source in the tests."""


def length(prompts, texts):
    """The number of characters of each response."""
    return [float(len(t)) for t in texts]


def wrong_shape(prompts, texts):
    return [1.0]
