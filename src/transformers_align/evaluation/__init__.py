"""Evaluation: batched greedy generation, MASSIVE slot filling, WMT translation, in-context learning
and MGSM scoring."""
