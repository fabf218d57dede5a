"""The frontier measurement exports and times real runs (tiny ones)."""

import json
import os
import shutil

from tfdsmlp.experiments.frontier import frontier_markdown, measure


def test_measure_exports_times_and_records(export_run_dir, export_data,
                                           tmp_path):
    entries = [{"label": "teacher_gdcn", "kind": "teacher",
                "teacher": "gdcn", "run": export_run_dir, "phase": "teacher",
                "test_auc": 0.6, "params": 1},
               {"label": "dsmlp_gdcn", "kind": "dsmlp", "teacher": "gdcn",
                "run": export_run_dir, "phase": "dsmlp", "test_auc": 0.7,
                "params": 2}]
    result = measure(entries, str(tmp_path), export_data, rounds=2,
                     repeats=3, log=lambda *_: None)
    for label in ("teacher_gdcn", "dsmlp_gdcn"):
        assert os.path.exists(tmp_path / "saved_models" / label / "1" /
                              "saved_model.pb")
    with open(tmp_path / "frontier.json") as f:
        assert json.load(f) == result
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert (result["cpp_error"] is None) == bool(compiler)
    for m in result["models"]:
        for path in ("", "cpp_") if compiler else ("",):
            assert m[f"{path}batch4096_examples_per_s"] > 0
            assert 0 < m[f"{path}batch1_p50_ms"] <= m[f"{path}batch1_p99_ms"]
    text = frontier_markdown(result, str(tmp_path / "plots" / "f.png"))
    assert "| dsmlp_gdcn | gdcn | 0.7000 |" in text
    assert os.path.exists(tmp_path / "plots" / "f.png")
