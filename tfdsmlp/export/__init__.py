"""SavedModel export for TF Serving (raw-value signatures, warm-up, checks).

See docs/SERVING.md. `export_saved_model` writes one version directory,
`export_run` exports a phase of a `python -m tfdsmlp run` directory and
`serve_check` verifies an exported version in a fresh TensorFlow-only
process.
"""

from tfdsmlp.export.run_models import (EXPORT_PHASES, export_run,
                                       load_run_model)
from tfdsmlp.export.saved_model import (SIGNATURES, export_saved_model,
                                        next_version, read_metadata,
                                        read_method_names)

__all__ = ["EXPORT_PHASES", "SIGNATURES", "export_run", "export_saved_model",
           "load_run_model", "next_version", "read_metadata",
           "read_method_names", "serve_check"]


def serve_check(*args, **kwargs):
    """See `tfdsmlp.export.serve_check.serve_check`."""
    from tfdsmlp.export.serve_check import serve_check as _serve_check

    return _serve_check(*args, **kwargs)
