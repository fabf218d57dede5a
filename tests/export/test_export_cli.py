"""`python -m tfdsmlp export` and `serve-check` (fresh TensorFlow-only
process, every signature vs the in-process model, latency report)."""

from __future__ import annotations

import json
import os

from tfdsmlp import cli
from tfdsmlp.export import SIGNATURES, read_metadata

import pytest


@pytest.fixture(scope="module")
def cli_export(export_run_dir, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("cli_saved_models"))
    rc = cli.main(["export", "--run", export_run_dir, "--name", "ctr",
                   "--version", "7", "--base-dir", base])
    assert rc == 0
    return base


def test_export_command_writes_the_requested_version(cli_export,
                                                     export_run_dir, capsys):
    from tfdsmlp.export.run_models import selected_phase

    path = os.path.join(cli_export, "ctr", "7")
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    # the default phase, best: the model the run selected by validation
    assert read_metadata(path)["phase"] == selected_phase(export_run_dir)


def test_export_command_refuses_an_existing_version(cli_export,
                                                    export_run_dir, capsys):
    rc = cli.main(["export", "--run", export_run_dir, "--name", "ctr",
                   "--version", "7", "--base-dir", cli_export])
    assert rc == 2
    assert "already exists" in capsys.readouterr().err


def test_export_command_next_version_and_teacher_phase(cli_export,
                                                       export_run_dir,
                                                       capsys):
    rc = cli.main(["export", "--run", export_run_dir, "--name", "ctr",
                   "--phase", "teacher", "--base-dir", cli_export])
    assert rc == 0
    assert "exported teacher:" in capsys.readouterr().out
    assert sorted(os.listdir(os.path.join(cli_export, "ctr"))) == ["7", "8"]
    assert read_metadata(os.path.join(cli_export, "ctr", "8"))[
        "model_name"] == "gdcn"


def test_export_command_bad_run_is_a_clear_error(tmp_path, capsys):
    rc = cli.main(["export", "--run", str(tmp_path), "--name", "x",
                   "--base-dir", str(tmp_path)])
    assert rc == 2
    assert "not a run directory" in capsys.readouterr().err


def test_serve_check(exported, export_data, tmp_path, capsys):
    out = str(tmp_path / "report.json")
    rc = cli.main(["serve-check", exported["dsmlp"], "--data", export_data,
                   "--iters", "20", "--batch", "256", "--json", out])
    text = capsys.readouterr().out
    assert rc == 0, text
    with open(out) as f:
        rep = json.load(f)
    assert rep["ok"] and rep["rows"] == 64
    # a fresh process with TensorFlow only: the import hook refused
    # nothing because nothing tried to import tfdsmlp / tf_keras / TFRS
    assert rep["isolated"]
    assert rep["worker"]["blocked_import_attempts"] == []
    assert not {"tfdsmlp", "tf_keras", "tensorflow_recommenders"} & set(
        rep["worker"]["loaded_packages"])
    assert set(rep["checks"]) == set(SIGNATURES)
    for name, check in rep["checks"].items():
        assert check["ok"], (name, check)
    assert rep["checks"]["classify"]["method_name"] == \
        "tensorflow/serving/classify"
    assert rep["converter_ids_equal_records"]
    for sig in ("serving_default", "predict_indexed", "predict_examples"):
        t = rep["latency"][sig]
        assert 0 < t["batch1_p50_ms"] <= t["batch1_p99_ms"]
        assert t["batch"] == 256 and t["rows_per_second"] > 0
    assert "RESULT: OK" in text and "b1 p50 ms" in text


def test_serve_check_comparison_catches_differences(test_rows, reference):
    from tfdsmlp.servecheck.check import compare

    ref = reference["dsmlp"]
    good = {"probability": ref["probability"].reshape(-1, 1).tolist(),
            "logit": ref["logit"].reshape(-1, 1).tolist()}
    assert compare("serving_default", good, ref, test_rows, 1e-5)["ok"]
    bad = {"probability": (ref["probability"] + 1e-3).tolist(),
           "logit": ref["logit"].tolist()}
    assert not compare("serving_default", bad, ref, test_rows, 1e-5)["ok"]
    ids = test_rows.ids.copy()
    ids[3, 2] = 1
    skew = compare("preprocess", {"ids": ids.tolist(),
                                  "dense": test_rows.dense.tolist()},
                   ref, test_rows, 1e-5)
    assert not skew["ok"] and "skew" in skew["note"]
    assert skew["diffs"]["ids (rows differing)"] == 1
    short = {"scores": [[0.5, 0.5]] * len(test_rows),
             "classes": [["1", "0"]] * len(test_rows)}
    assert not compare("classify", short, ref, test_rows, 1e-5)["ok"]


def test_run_export_name_exports_dsmlp_and_teacher(
        export_run_dir, export_data, tmp_path, monkeypatch, capsys):
    """`run --export-name NAME` (training replaced by the finished run)."""
    from tfdsmlp.export.run_models import selected_phase
    from tfdsmlp.run_dir import RunDir
    from tfdsmlp.training import pipeline

    monkeypatch.setattr(pipeline, "run_dsmlp",
                        lambda *a, **k: pipeline.RunResult(
                            RunDir(export_run_dir), {"phases": {}}, None,
                            None))
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["run", "--data", export_data, "--teacher", "gdcn",
                   "--preset", "synthetic", "--out", export_run_dir,
                   "--export-name", "ctr"])
    assert rc == 0
    out = capsys.readouterr().out
    # NAME gets the model the run selected by validation (on this tiny
    # run, one stream of the aligned DS-MLP alone)
    best = selected_phase(export_run_dir)
    assert best in ("dsmlp", "student", "dsmlp_main", "dsmlp_parallel")
    assert f"exported {best}: saved_models/ctr/1" in out
    assert "exported teacher: saved_models/ctr_teacher/1" in out
    assert read_metadata("saved_models/ctr/1")["phase"] == best
    assert read_metadata("saved_models/ctr_teacher/1")["phase"] == "teacher"
