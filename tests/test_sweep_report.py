"""`report DIR --sweep KEY`: a setting swept over seeds, on hand-written
run directories, so every mean and standard deviation is checkable by
hand."""

import json
import os

from tfdsmlp import cli
from tfdsmlp.sweep_report import sweep_table

import pytest
import yaml


def _run(root, name, seed, kd_weight, valid_auc, test_auc, lr=1e-3,
         teacher=None):
    path = os.path.join(root, name)
    os.makedirs(path)
    config = {"data": "/d", "distill": {"kd_weight": kd_weight, "train": {
        "seed": seed, "learning_rate": lr}}}
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    phase = {"valid": {"auc": valid_auc, "logloss": 0.5},
             "test": {"auc": test_auc, "logloss": 0.4}, "params": 7}
    phases = {"dsmlp": phase, "student": phase}
    if teacher is not None:  # (valid AUC, test AUC, test logloss)
        phases["teacher"] = {"valid": {"auc": teacher[0], "logloss": 0.5},
                             "test": {"auc": teacher[1],
                                      "logloss": teacher[2]}}
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump({"models": {"teacher": "gdcn"}, "phases": phases,
                   "selected": {"phase": "dsmlp"}}, f)


@pytest.fixture
def sweep_dir(tmp_path):
    root = str(tmp_path / "runs")
    _run(root, "l0_s1", 1, 0.0, 0.70, 0.69)
    _run(root, "l0_s2", 2, 0.0, 0.72, 0.71)
    _run(root, "l05_s1", 1, 0.5, 0.80, 0.60)  # best valid, worst test
    _run(root, "l1_s1", 1, 1.0, 0.74, 0.75)
    _run(root, "l1_s2", 2, 1.0, 0.76, 0.77)
    _run(root, "l1_lr", 1, 1.0, 0.99, 0.99, lr=1e-2)  # another setting
    return root


def test_a_row_per_value_and_the_choice_made_on_validation(sweep_dir):
    table = sweep_table(sweep_dir, "distill.kd_weight")
    lines = table.splitlines()
    # numeric order; mean ± sample sd over each value's runs
    assert lines[2] == ("| 0.0 | 2 (l0_s1, l0_s2) | 0.71000 ± 0.01414 | "
                        "0.70000 ± 0.01414 | 0.40000 ± 0.00000 |")
    assert lines[3].startswith("| 0.5 | 1 (l05_s1) | 0.80000 ± - |")
    assert lines[4].startswith("| 1.0 | 2 (l1_s1, l1_s2) | 0.75000 ± ")
    # chosen on validation (0.5), not on test (1.0)
    assert ("Best by validation AUC: distill.kd_weight = 0.5 (mean 0.80000 "
            "over 1 run(s)).") in table
    # the run with another learning rate is named, not mixed in
    assert "Not in the sweep (other settings differ too): l1_lr." in table
    assert "0.99" not in table
    assert "Teacher (" not in table  # these runs recorded no teacher
    assert "Not finished" not in table


def test_the_teacher_is_the_reference_counted_once(tmp_path):
    root = str(tmp_path / "runs")
    one = (0.78, 0.77, 0.45)
    _run(root, "l0_s1", 1, 0.0, 0.70, 0.69, teacher=one)
    _run(root, "l1_s1", 1, 1.0, 0.74, 0.75, teacher=one)
    _run(root, "l1_s2", 2, 1.0, 0.76, 0.77, teacher=one)
    table = sweep_table(root, "distill.kd_weight")
    assert ("Teacher (one teacher, in every run): valid AUC 0.78000, test "
            "AUC 0.77000, test logloss 0.45000.") in table
    # a second teacher: mean ± sample sd over the two distinct ones
    _run(root, "l0_s2", 2, 0.0, 0.72, 0.71, teacher=(0.80, 0.79, 0.43))
    table = sweep_table(root, "distill.kd_weight")
    assert ("Teacher (mean ± sd of the 2 distinct teachers): valid AUC "
            "0.79000 ± 0.01414, test AUC 0.78000 ± 0.01414, test logloss "
            "0.44000 ± 0.01414.") in table
    # a run still training is named below the table
    os.makedirs(os.path.join(root, "l2_s1"))
    with open(os.path.join(root, "l2_s1", "config.yaml"), "w") as f:
        yaml.safe_dump({"data": "/d"}, f)
    assert sweep_table(root, "distill.kd_weight").endswith(
        "Not finished (no metrics.json yet), not in the tables: l2_s1.")
    # the teachers' own sweep has no reference line
    assert "Teacher (" not in sweep_table(root, "distill.kd_weight",
                                          phase="teacher")


def test_a_misspelt_or_unswept_key_is_an_error_naming_it(sweep_dir):
    with pytest.raises(ValueError, match="did you mean distill.kd_weight"):
        sweep_table(sweep_dir, "distill.kd_wieght")
    with pytest.raises(ValueError, match="is a seed"):
        sweep_table(sweep_dir, "distill.train.seed")
    with pytest.raises(ValueError, match="differ in 'data' alone"):
        sweep_table(sweep_dir, "data")


def test_cli_writes_the_plot_and_refuses_plot_without_sweep(
        sweep_dir, tmp_path, capsys):
    png = str(tmp_path / "plots" / "lambda.png")
    assert cli.main(["report", sweep_dir, "--sweep", "distill.kd_weight",
                     "--phase", "student", "--plot", png]) == 0
    assert f"Plot: {png}" in capsys.readouterr().out
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["report", sweep_dir, "--plot", png]) == 2
    assert "give --sweep KEY" in capsys.readouterr().err
    run = os.path.join(sweep_dir, "l0_s1")
    assert cli.main(["report", run, "--sweep", "distill.kd_weight"]) == 2
    assert "directory of runs" in capsys.readouterr().err


def test_runs_without_the_phase_are_named_as_in_the_run_table(tmp_path):
    root = str(tmp_path / "runs")
    one = (0.78, 0.77, 0.45)
    _run(root, "l0_s1", 1, 0.0, 0.70, 0.69, teacher=one)
    _run(root, "l1_s1", 1, 1.0, 0.74, 0.75, teacher=one)
    _run(root, "l1_s2", 2, 1.0, 0.76, 0.77)  # trained without a teacher
    table = sweep_table(root, "distill.kd_weight", phase="teacher")
    # the same words as `report DIR --phase teacher` below its table
    assert table.endswith("Runs without a 'teacher' phase, not in the "
                          "tables: l1_s2.")
