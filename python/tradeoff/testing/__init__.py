"""Tiny models for tests and the README walkthrough (out of the main namespace):
``python -m tradeoff.testing.tiny DIR``."""
