"""SavedModel export for TF Serving (raw-value signatures, warm-up requests).

See docs/SERVING.md. `export_saved_model` writes one version directory and
`export_run` exports a phase of a `python -m tfdsmlp run` directory.

This package is what an export needs, and nothing else: it imports neither
`data_tools` nor the checking tools. Verifying an export (`python -m tfdsmlp
serve-check`, the in-process TF Serving emulator, the converter's raw rows)
lives in `tfdsmlp.servecheck`; scoring files with one lives in
`tfdsmlp.predict`.
"""

from tfdsmlp.export.run_models import (
    EXPORT_PHASES,
    export_run,
    load_run_model,
)
from tfdsmlp.export.saved_model import (
    SIGNATURES,
    export_saved_model,
    next_version,
    read_metadata,
    read_method_names,
)

__all__ = ["EXPORT_PHASES", "SIGNATURES", "export_run", "export_saved_model",
           "load_run_model", "next_version", "read_metadata",
           "read_method_names"]
