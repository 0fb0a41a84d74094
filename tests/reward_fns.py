"""Reward functions for the ``python:module:function`` reward source in the tests."""


def length(prompts, texts):
    """The number of characters of each response."""
    return [float(len(t)) for t in texts]


def wrong_shape(prompts, texts):
    return [1.0]


def slow_length(prompts, texts):
    """length, a tenth of a second per call: a scoring slow enough to be killed half-way."""
    import time

    time.sleep(0.1)
    return length(prompts, texts)
