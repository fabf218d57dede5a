"""The version directory: layout, signatures, method names, assets,
warm-up requests, provenance, atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import stat

from tfdsmlp.export import (
    SIGNATURES,
    export_run,
    export_saved_model,
    next_version,
    read_metadata,
    read_method_names,
)
from tfdsmlp.export.saved_model import (
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    REGRESS_METHOD,
)
from tfdsmlp.export.serving_requests import read_warmup

import pytest
import tensorflow as tf


def _signature_defs(path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    assert len(sm.meta_graphs) == 1
    assert list(sm.meta_graphs[0].meta_info_def.tags) == ["serve"]
    return sm.meta_graphs[0].signature_def


def test_versions_are_integer_directories(exported):
    for kind in ("dsmlp", "teacher"):
        path = exported[kind]
        assert os.path.basename(path) == "1"
        model_dir = os.path.dirname(path)
        # only complete versions: no temporary directory left behind
        assert os.listdir(model_dir) == ["1"]
        assert next_version(model_dir) == 2
        for name in ("saved_model.pb", "variables", "assets",
                     "assets.extra", "fingerprint.pb"):
            assert os.path.exists(os.path.join(path, name)), name
        # the Keras model itself is not serialized (loads without Keras)
        assert not os.path.exists(os.path.join(path, "keras_metadata.pb"))


def test_existing_version_is_refused_and_nothing_is_left(exported,
                                                         export_run_dir):
    with pytest.raises(FileExistsError, match="already exists"):
        export_run(export_run_dir, "dsmlp", "dsmlp", version=1,
                   base_dir=exported["base"])
    assert os.listdir(os.path.join(exported["base"], "dsmlp")) == ["1"]


def test_failed_export_leaves_no_version(exported, export_run_dir,
                                         monkeypatch):
    def half_written(module, path, signatures=None):
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", half_written)
    with pytest.raises(RuntimeError, match="disk full"):
        export_run(export_run_dir, "broken", "dsmlp", version=3,
                   base_dir=exported["base"])
    # no version and no temporary directory: TF Serving sees nothing
    assert os.listdir(os.path.join(exported["base"], "broken")) == []


def test_signatures_and_method_names(exported):
    path = exported["dsmlp"]
    methods = read_method_names(path)
    assert set(SIGNATURES) <= set(methods)
    assert methods["classify"] == CLASSIFY_METHOD
    assert methods["regress"] == REGRESS_METHOD
    for name in ("serving_default", "predict_indexed", "predict_examples",
                 "preprocess"):
        assert methods[name] == PREDICT_METHOD
    defs = _signature_defs(path)
    dt = tf.dtypes.as_dtype

    def io(name):
        d = defs[name]
        return ({k: dt(v.dtype) for k, v in d.inputs.items()},
                {k: dt(v.dtype) for k, v in d.outputs.items()})

    raw = {**{f"c{i}": tf.string for i in range(6)},
           "x0": tf.float32, "x1": tf.float32}
    pred = {"probability": tf.float32, "logit": tf.float32}
    assert io("serving_default") == (raw, pred)
    assert io("predict_indexed") == ({"ids": tf.int64, "dense": tf.float32},
                                     pred)
    assert io("predict_examples") == ({"examples": tf.string}, pred)
    assert io("classify") == ({"inputs": tf.string},
                              {"scores": tf.float32, "classes": tf.string})
    assert io("regress") == ({"inputs": tf.string}, {"outputs": tf.float32})
    assert io("preprocess") == (raw, {"ids": tf.int64, "dense": tf.float32})
    # static output shapes as documented
    assert [d.size for d in defs["serving_default"].outputs[
        "probability"].tensor_shape.dim] == [-1, 1]
    assert [d.size for d in defs["classify"].outputs[
        "scores"].tensor_shape.dim] == [-1, 2]
    assert [d.size for d in defs["regress"].outputs[
        "outputs"].tensor_shape.dim] == [-1]


def test_fingerprint_matches_rewritten_saved_model(exported):
    from tensorflow.python.saved_model import fingerprinting_utils

    path = exported["dsmlp"]
    fp = tf.saved_model.experimental.read_fingerprint(path)
    # the fingerprint was recomputed after the method-name rewrite
    assert fp.saved_model_checksum == tf.saved_model.experimental.Fingerprint\
        .from_proto(_fresh_fingerprint(path)).saved_model_checksum
    assert fingerprinting_utils.singleprint_from_saved_model(path)


def _fresh_fingerprint(path):
    from tensorflow.core.protobuf import fingerprint_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import (
        fingerprinting as fingerprinting_pywrap,
    )

    fp = fingerprint_pb2.FingerprintDef()
    fp.ParseFromString(fingerprinting_pywrap.CreateFingerprintDef(path))
    return fp


def test_vocabularies_are_assets(exported, export_data):
    assets = os.path.join(exported["dsmlp"], "assets")
    for i in range(6):
        with open(os.path.join(assets, f"c{i}.txt"), "rb") as f, \
                open(os.path.join(export_data, "vocab", f"c{i}.txt"),
                     "rb") as g:
            assert f.read() == g.read()


def test_relocated_model_reads_its_own_assets(exported, export_data,
                                              tmp_path):
    """TF Serving copies versions around: the copy must not need the
    dataset directory."""
    copy = str(tmp_path / "copy" / "1")
    shutil.copytree(exported["dsmlp"], copy)
    vocab = os.path.join(export_data, "vocab")
    os.rename(vocab, vocab + ".hidden")
    try:
        loaded = tf.saved_model.load(copy, tags=["serve"])
        out = loaded.signatures["preprocess"](
            **{f"c{i}": tf.constant([f"c{i}_0", "unseen", ""])
               for i in range(6)},
            x0=tf.constant([1.0, 2.0, 3.0]), x1=tf.constant([0.0, 0.0, 0.0]))
    finally:
        os.rename(vocab + ".hidden", vocab)
    ids = out["ids"].numpy()
    assert (ids[1] == 1).all() and (ids[2] == 0).all() and (ids[0] >= 2).all()


def test_warmup_requests_cover_every_signature(exported, servable):
    logs = read_warmup(os.path.join(exported["dsmlp"], "assets.extra",
                                    "tf_serving_warmup_requests"))
    kinds = [log.WhichOneof("log_type") for log in logs]
    predicted = {log.predict_log.request.model_spec.signature_name
                 for log in logs if log.HasField("predict_log")}
    assert predicted == {"serving_default", "predict_indexed",
                         "predict_examples", "preprocess"}
    assert "classify_log" in kinds and "regress_log" in kinds
    assert {log.predict_log.request.model_spec.name for log in logs
            if log.HasField("predict_log")} == {"dsmlp"}
    # every record is a valid request for this model
    assert servable.replay_warmup() == len(logs)


def test_metadata_records_the_run(exported, export_run_dir, export_data):
    meta = read_metadata(exported["dsmlp"])
    assert meta["run_dir"] == os.path.abspath(export_run_dir)
    assert meta["phase"] == "dsmlp" and meta["weights_phase"] == "align"
    assert meta["data_dir"] == os.path.abspath(export_data)
    assert [i["name"] for i in meta["raw_inputs"]] == [
        "c0", "c1", "c2", "c3", "c4", "c5", "x0", "x1"]
    teacher = read_metadata(exported["teacher"])
    assert teacher["phase"] == "teacher" and teacher["model_name"] == "gdcn"
    json.dumps(meta)


def test_without_data_dir_only_indexed_signatures(tmp_path, export_data):
    from tfdsmlp.dataset_dir import DatasetDir
    from tfdsmlp.models import build_model

    spec = DatasetDir.open(export_data).spec
    model = build_model("dnn", {"hidden_units": [4]}, spec)
    model(model.dummy_inputs())
    with pytest.warns(UserWarning, match="data_dir"):
        path = export_saved_model(model, spec, str(tmp_path), "legacy")
    assert set(read_method_names(path)) - {"__saved_model_init_op"} == {
        "serving_default", "predict_indexed"}


def test_unknown_phase_and_unfinished_run_are_clear_errors(tmp_path,
                                                           export_run_dir):
    with pytest.raises(ValueError, match="--phase should be one of"):
        export_run(export_run_dir, "x", "align", base_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        export_run(str(tmp_path), "x", base_dir=str(tmp_path))


def _modes(root):
    """{relative path: permission bits} of `root` and everything in it."""
    out = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = stat.S_IMODE(
                os.lstat(path).st_mode)
    return out


def _assert_world_readable(root):
    modes = _modes(root)
    for rel, mode in modes.items():
        want = 0o755 if os.path.isdir(os.path.join(root, rel)) else 0o644
        assert mode == want, f"{rel}: {oct(mode)}, expected {oct(want)}"
    return modes


def test_exported_versions_are_readable_by_other_users(exported):
    """TF Serving often runs as another user: directories 0755, files 0644
    (the temporary directory a version is written into starts as 0700)."""
    for kind in ("dsmlp", "teacher"):
        modes = _assert_world_readable(exported[kind])
        assert {"saved_model.pb", "variables", "assets", "assets.extra",
                "assets.extra/tfdsmlp_export.json"} <= set(modes)


def test_permissions_do_not_depend_on_the_umask(export_data, tmp_path):
    from tfdsmlp.dataset_dir import DatasetDir
    from tfdsmlp.models import build_model

    spec = DatasetDir.open(export_data).spec
    model = build_model("dnn", {"hidden_units": [4]}, spec)
    model(model.dummy_inputs())
    base = tmp_path / "new" / "saved_models"
    old = os.umask(0o077)
    try:
        path = export_saved_model(model, spec, str(base), "m",
                                  data_dir=export_data)
    finally:
        os.umask(old)
    modes = _assert_world_readable(path)
    assert "assets.extra/tf_serving_warmup_requests" in modes
    # the directories the export created on the way are readable too
    for created in (base.parent, base, base / "m"):
        assert stat.S_IMODE(os.stat(created).st_mode) == 0o755, created
