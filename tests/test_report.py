"""`report DIR`: one row per run (its selected model) and the mean ±
standard deviation over runs that differ only in their seeds; on
hand-written run directories, so the figures are checkable by hand."""

import json
import os

from tfdsmlp import cli
from tfdsmlp.report import runs_table

import yaml


def _run(root, name, seed, lr, auc, phase="teacher"):
    path = os.path.join(root, name)
    os.makedirs(path)
    config = {"data": "/d", "teacher": {"model": "dnn", "train": {
        "seed": seed, "learning_rate": lr}}}
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    scores = {"auc": auc, "logloss": 0.5}
    phases = {"teacher": {"test": scores, "valid": scores, "params": 7,
                          "epochs": 3, "best_epoch": 2}}
    phases[phase] = phases["teacher"]
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump({"models": {"teacher": "dnn"}, "phases": phases,
                   "selected": {"phase": phase}}, f)


def test_seed_repeats_are_averaged_and_other_settings_are_not(tmp_path,
                                                              capsys):
    root = str(tmp_path)
    _run(root, "a_2021", 2021, 1e-3, 0.70)
    _run(root, "a_2022", 2022, 1e-3, 0.72)
    _run(root, "a_2023", 2023, 1e-3, 0.74)
    _run(root, "b_2021", 2021, 1e-2, 0.90, phase="dsmlp")  # alone: no mean
    table = runs_table(root)
    assert "| a_2021 | dnn | 0.7000 | 0.5000 | 0.7000 | 0.5000 | 3 | 2 |" \
        in table
    assert "| b_2021 | dsmlp (dnn) | 0.9000 |" in table
    # mean 0.72, sample standard deviation 0.02
    assert ("| a | 3 | 0.72000 ± 0.02000 | 0.50000 ± 0.00000 | "
            "0.72000 ± 0.02000 | 0.50000 ± 0.00000 |") in table
    assert "| b" not in table.split("mean")[1]
    assert cli.main(["report", root]) == 0
    assert "| a | 3 |" in capsys.readouterr().out
