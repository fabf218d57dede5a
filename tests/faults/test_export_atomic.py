"""An exception while a SavedModel is written leaves no version directory:
TF Serving (which loads every integer subdirectory) never sees a half-written
version, and the next export still gets the next free version number."""

import os
import warnings

import tfdsmlp  # noqa: F401
from tfdsmlp.export import saved_model
from tfdsmlp.models import build_model

import pytest
import tensorflow as tf


def _export(model, spec, base):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no data_dir: indexed inputs only
        return saved_model.export_saved_model(model, spec, str(base), "m")


def test_failed_export_leaves_no_version_dir(tiny_spec, tmp_path,
                                             monkeypatch):
    model = build_model("dsmlp", {"main_hidden_units": [8],
                                  "parallel_hidden_units": [4]}, tiny_spec)
    model(model.dummy_inputs())
    real_save = tf.saved_model.save

    def save_then_fail(obj, export_dir, *args, **kwargs):
        real_save(obj, export_dir, *args, **kwargs)  # a complete graph...
        with open(os.path.join(export_dir, "half-written"), "w") as f:
            f.write("x")
        raise OSError("disk full")  # ...then the write fails

    monkeypatch.setattr(tf.saved_model, "save", save_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _export(model, tiny_spec, tmp_path)
    model_dir = tmp_path / "m"
    assert not [d for d in os.listdir(model_dir) if d.isdigit()]
    assert os.listdir(model_dir) == []  # the temporary dir is removed too

    # A temporary dir left by a killed export (`kill -9`: no cleanup) is
    # hidden and not an integer: neither TF Serving nor next_version counts
    # it.
    os.makedirs(model_dir / ".1.tmp-killed")
    assert saved_model.next_version(str(model_dir)) == 1
    monkeypatch.setattr(tf.saved_model, "save", real_save)
    path = _export(model, tiny_spec, tmp_path)
    assert os.path.basename(path) == "1"
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
