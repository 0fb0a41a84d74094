"""Worlds where the answer is known: the paper's toy experiment (:mod:`tradeoff.worlds.toy`)."""
