"""Make sure `tf.keras` is Keras 2 (tf-keras) before TensorFlow is imported.

TensorFlow Recommenders only works with Keras 2. TensorFlow decides which
Keras `tf.keras` means when it is first imported, from the environment
variable ``TF_USE_LEGACY_KERAS``. This module sets it, and if TensorFlow was
already imported with Keras 3 it raises an error telling the caller what to do
instead of failing later with an obscure Keras 3 / TFRS message.
"""

import os
import sys

_HINT = (
    "tfdsmlp needs `tf.keras` to be Keras 2 (the `tf-keras` package), because "
    "TensorFlow Recommenders does not support Keras 3. TensorFlow was already "
    "imported in this process with {found}. Import tfdsmlp before TensorFlow, or "
    "set the environment variable TF_USE_LEGACY_KERAS=1 before starting Python."
)


class KerasVersionError(ImportError):
    """Raised when TensorFlow was imported with Keras 3 before tfdsmlp."""


def ensure_legacy_keras() -> None:
    """Sets TF_USE_LEGACY_KERAS=1, or fails if it is too late to do so."""
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return
    import tensorflow as tf  # already imported: only inspect it

    module = getattr(tf.keras, "__name__", "")
    if not module.startswith("tf_keras"):
        import keras  # what tf.keras resolves to without the legacy switch

        raise KerasVersionError(_HINT.format(
            found=f"Keras {keras.__version__} (tf.keras is `{module}`)"))
