"""Input pipeline over dataset directories written by `data_tools`."""

from tfdsmlp.data.reader import make_dataset, make_dataset_fn

__all__ = ["make_dataset", "make_dataset_fn"]
