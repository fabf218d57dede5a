"""Training utilities: typed train config, callbacks, fit/evaluate helpers."""

from tfdsmlp.training.lazy_adam import LazyAdam

__all__ = ["LazyAdam"]
