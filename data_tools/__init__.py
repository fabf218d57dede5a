"""data_tools: build tfdsmlp dataset directories.

* `data_tools.convert.convert(...)` / `python -m data_tools convert`:
  Criteo, Avazu, libfm or CSV files -> dataset.json + vocab/ + TFRecords.
* `data_tools.inspect_dataset.inspect(...)` / `python -m data_tools inspect`:
  schema, counts and decoded examples of a dataset directory.
* `data_tools.synth.write_synthetic(...)` / `python -m data_tools synth`:
  a synthetic dataset with a known logit (explicit and implicit interactions).

The layout is described in docs/DATA_FORMAT.md and tfdsmlp/features.py.
Only `inspect_dataset` imports TensorFlow (after tfdsmlp, for Keras 2); the
converter writes Example and TFRecord bytes itself.
"""

import tfdsmlp  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)
