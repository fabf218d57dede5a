"""Training utilities: typed train config, callbacks, fit/evaluate helpers."""
