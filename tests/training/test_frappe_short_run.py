"""A short DS-MLP run on real Frappe data (CI has ../shared/data).

A few epochs per phase with the BARS Frappe presets; every phase's validation
AUC must exceed 0.95. The full-length comparison belongs to docs/RESULTS.md,
not to a unit test.
"""

import os
import subprocess
import sys

import pytest
from tiny_data import REPO_ROOT, require_shared_data

FIELDS = ("user,item,daytime,weekday,isweekend,homework,cost,weather,"
          "country,city")


@pytest.fixture(scope="module")
def frappe_dir(tmp_path_factory):
    src = require_shared_data("frappe")
    out = str(tmp_path_factory.mktemp("frappe") / "data")
    cmd = [sys.executable, "-m", "data_tools", "convert", "--format", "csv",
           "--train", str(src / "train.csv"), "--valid",
           str(src / "valid.csv"), "--test", str(src / "test.csv"),
           "--label", "label", "--categorical", FIELDS, "--out", out,
           "--quiet"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_short_frappe_run_every_phase_above_095(frappe_dir, tmp_path):
    from tfdsmlp.training.pipeline import run_dsmlp
    from tfdsmlp.training.presets import build_run_config

    # Validation AUC per epoch with these settings (session 35, `report
    # --epochs`): teacher 0.9341, 0.9430, 0.9584; distillation 0.9394,
    # 0.9654; alignment 0.9767. (4/3/2 epochs took 210 s of a test worker.)
    short = ["teacher.train.epochs=3", "distill.train.epochs=2",
             "align.train.epochs=1"]
    cfg = build_run_config("frappe", "gdcn", overrides=short + [
        "student.params.main_hidden_units=[400,400,400]"])
    result = run_dsmlp(frappe_dir, cfg, str(tmp_path / "run"),
                       strategy="default", verbose=0)
    result = result.metrics
    for name, phase in result["phases"].items():
        assert phase["valid"]["auc"] > 0.95, (name, phase["valid"])
    assert os.path.exists(tmp_path / "run" / "metrics.json")
