"""Constants of the dataset format (docs/DATA_FORMAT.md).

Shared by `data_tools` (which writes datasets) and `tfdsmlp.features`
(which reads them). This module imports nothing, so that
`python -m data_tools convert` starts without loading the model side.
"""

FORMAT_VERSION = 1
PADDING_ID = 0          # the empty / missing value
OOV_ID = 1              # every token not in the vocabulary
NUM_RESERVED_IDS = 2    # vocabulary line i has id i + NUM_RESERVED_IDS
FIELD_KINDS = ("categorical", "numeric")

# dataset.json "fields" entries start with these keys: the attributes of
# tfdsmlp.features.FieldSpec, in order (a test checks they agree).
FIELD_SPEC_KEYS = ("name", "kind", "vocab_size", "transform", "source")
