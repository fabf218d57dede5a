"""tfdsmlp: Dual-Stream MLP (DS-MLP) for CTR prediction on TensorFlow/Keras 2.

Importing this package guarantees that `tf.keras` is Keras 2 (tf-keras), which
TensorFlow Recommenders requires; it raises `KerasVersionError` if TensorFlow
was already imported with Keras 3.
"""

from tfdsmlp._bootstrap import KerasVersionError, ensure_legacy_keras

ensure_legacy_keras()

__version__ = "0.1.0"

__all__ = ["KerasVersionError", "__version__"]
