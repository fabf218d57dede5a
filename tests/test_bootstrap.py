"""`import tfdsmlp` makes `tf.keras` Keras 2, or fails clearly if too late.

Which Keras `tf.keras` means is fixed when TensorFlow is first imported, so
each case runs in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tiny_data import REPO_ROOT


def run_python(code: str, legacy_env: str | None = None
               ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    if legacy_env is not None:
        env["TF_USE_LEGACY_KERAS"] = legacy_env
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          cwd=str(REPO_ROOT), env=env, capture_output=True,
                          text=True, timeout=120)


def test_tensorflow_first_with_keras3_raises_clear_error():
    result = run_python("""
        import tensorflow as tf
        try:
            import tfdsmlp
        except ImportError as e:
            from tfdsmlp._bootstrap import KerasVersionError
            assert isinstance(e, KerasVersionError), type(e)
            print("MESSAGE:", e)
        else:
            raise SystemExit("import tfdsmlp did not fail")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    message = result.stdout.split("MESSAGE:", 1)[1]
    assert "TF_USE_LEGACY_KERAS" in message
    assert "Import tfdsmlp before TensorFlow" in message
    assert "Keras 3." in message  # names the Keras it found


def test_tfdsmlp_first_makes_tf_keras_keras2_and_tfrs_importable():
    result = run_python("""
        import sys
        import tfdsmlp
        assert "tensorflow" not in sys.modules
        import os
        assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
        import tensorflow as tf
        import tf_keras
        assert tf.keras.__name__.startswith("tf_keras"), tf.keras.__name__
        assert tf.keras.layers.Dense is tf_keras.layers.Dense
        import tensorflow_recommenders as tfrs
        layer = tfrs.layers.dcn.Cross()
        assert isinstance(layer, tf.keras.layers.Layer)
        tfdsmlp._bootstrap.ensure_legacy_keras()  # idempotent once loaded
        print("OK")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


def test_tensorflow_first_is_fine_when_legacy_keras_was_set():
    result = run_python("""
        import tensorflow as tf
        import tfdsmlp
        assert tf.keras.__name__.startswith("tf_keras"), tf.keras.__name__
        print("OK")
    """, legacy_env="1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
