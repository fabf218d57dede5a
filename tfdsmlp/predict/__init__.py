"""`python -m tfdsmlp predict`: score a file of raw rows with an export.

    predict_file("saved_models/dsmlp/1", "rows.csv", "scores.csv")

reads the input in batches and writes one `probability,logit` line per
input row, in order, to a CSV file with that header. The input is

* **csv**: a header naming the columns, then one row per example, the
  values as the raw data has them. The columns the model needs are its raw
  source columns, the inputs of its `serving_default` signature (listed in
  `assets.extra/tfdsmlp_export.json` under `raw_inputs`, see
  docs/SERVING.md); other columns (a label, an id) are ignored, blank lines
  are skipped. Categorical cells are sent as they are (`""` = missing);
  numeric cells are read as the converter reads them (an empty cell is 0).
* **tfrecord**: tf.Example records with the raw named features, fed to the
  `predict_examples` signature.

A `.gz` suffix means GZIP. Memory is bounded by the batch size: the file
is streamed (CSV rows by the `csv` module, records by `tf.data`), at most
two parsed batches wait while one is scored, and each batch's scores are
written before the next is read. Only TensorFlow and the SavedModel are
needed; the export's transforms and vocabulary lookup run in its graph. The
output appears under its name only when complete.

Modules: `model` (`load_model`, `ExportedModel`, `PredictError`), `inputs`
(batches from CSV or TFRecord), `progress` (the progress line) and `score`
(`predict_file`); the names below are the public API.
"""

from __future__ import annotations

from tfdsmlp.predict.inputs import (
    FORMATS,
    TFRECORD_SUFFIXES,
    Batch,
    guess_format,
    parse_number,
    read_csv_batches,
    read_tfrecord_batches,
)
from tfdsmlp.predict.model import (
    EXAMPLES_SIGNATURE,
    METADATA_FILE,
    RAW_SIGNATURE,
    ExportedModel,
    PredictError,
    load_model,
)
from tfdsmlp.predict.progress import Progress
from tfdsmlp.predict.score import (
    DEFAULT_BATCH_SIZE,
    OUTPUT_COLUMNS,
    predict_file,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EXAMPLES_SIGNATURE",
    "FORMATS",
    "METADATA_FILE",
    "OUTPUT_COLUMNS",
    "RAW_SIGNATURE",
    "TFRECORD_SUFFIXES",
    "Batch",
    "ExportedModel",
    "PredictError",
    "Progress",
    "guess_format",
    "load_model",
    "parse_number",
    "predict_file",
    "read_csv_batches",
    "read_tfrecord_batches",
]
