"""Checking an exported SavedModel: `python -m tfdsmlp serve-check`.

Checking tools, kept apart from the export itself (`tfdsmlp.export`, which
imports nothing from here and neither `data_tools`):

  check.py      `serve_check`: every signature on a split's raw rows in a
                fresh TensorFlow-only process vs the in-process model, plus
                latency (the `serve-check` command)
  worker.py     the script that fresh process runs
  raw_rows.py   `read_raw_rows`: a split's raw rows and the converter's ids
                for them (uses `data_tools`)
  emulator.py   `Servable`: answers TF Serving Predict / Classify / Regress
                protos and REST bodies in process (tests, docs checks)

Import the submodules; this package imports nothing on its own, so that
`tfdsmlp.servecheck.emulator` does not pull in `data_tools`.
"""
