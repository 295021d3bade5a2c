"""Builders for training tests: a mini task with a train split, and a tiny causal LM with a yes/no vocabulary.

They live in ``rrbench.mini_task`` and ``rrbench.tiny_models``; this module keeps the names plugin authors testing
their own losses already import.
"""

from rrbench.mini_task import MINI_TRAIN_SPLITS, make_train_task
from rrbench.tiny_models import make_tiny_causal_lm

__all__ = ["MINI_TRAIN_SPLITS", "make_tiny_causal_lm", "make_train_task"]
