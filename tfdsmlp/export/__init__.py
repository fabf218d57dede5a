"""SavedModel export for TF Serving."""

from tfdsmlp.export.saved_model import export_saved_model, next_version

__all__ = ["export_saved_model", "next_version"]
