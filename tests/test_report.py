"""`report DIR`: one row per run (its selected model) and the mean ±
standard deviation over runs that differ only in their seeds; on
hand-written run directories, so the figures are checkable by hand."""

import json
import os
import subprocess
import sys

from tfdsmlp import cli
from tfdsmlp.report import epochs_table, report, run_table, runs_table
from tfdsmlp.run_dir import RunDir

import pytest
import yaml
from tiny_data import REPO_ROOT


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
    seed_means = table.split("mean")[1].split("paired")[0]
    assert "| b" not in seed_means
    assert cli.main(["report", root]) == 0
    assert "| a | 3 |" in capsys.readouterr().out


def test_groups_differing_in_a_setting_are_compared_on_equal_seeds(
        tmp_path):
    root = str(tmp_path)
    _run(root, "a_2021", 2021, 1e-3, 0.70)
    _run(root, "a_2022", 2022, 1e-3, 0.72)
    _run(root, "a_2023", 2023, 1e-3, 0.74)  # no b on this seed: unpaired
    _run(root, "b_2021", 2021, 1e-2, 0.71)
    _run(root, "b_2022", 2022, 1e-2, 0.75)
    table = runs_table(root)
    # b - a on seeds 2021 and 2022: +0.01, +0.03 -> mean 0.02, sd 0.01414
    assert ("| a | b | teacher.train.learning_rate: 0.001 -> 0.01 | 2 | "
            "+0.02000 ± 0.01414 | +0.00000 ± 0.00000 | +0.02000 ± 0.01414 |"
            ) in table
    _run(root, "c_2021", 2021, 1e-1, 0.69)  # a single pair: no sd
    assert "| a | c_2021 | teacher.train.learning_rate: 0.001 -> 0.1 | 1 | " \
        "-0.01000 ± - |" in runs_table(root)


def test_phase_compares_that_phase_of_every_run(tmp_path, capsys):
    root = str(tmp_path)
    _run(root, "d_2021", 2021, 1e-3, 0.70, phase="dsmlp")
    _run(root, "d_2022", 2022, 1e-3, 0.72, phase="dsmlp")
    _run(root, "t_2021", 2021, 1e-2, 0.90)  # teacher only
    table = runs_table(root, phase="dsmlp")
    assert "| d_2021 | dsmlp (dnn) | 0.7000 |" in table
    assert "| t_2021 |" not in table
    assert table.endswith("Runs without a 'dsmlp' phase, not in the "
                          "tables: t_2021.")
    # without --phase each run shows the model it selected
    assert "| t_2021 | dnn | 0.9000 |" in runs_table(root)
    with pytest.raises(ValueError, match="no run in .* has a phase "
                                         "'student'"):
        runs_table(root, phase="student")
    with pytest.raises(ValueError, match="for one run"):
        report(os.path.join(root, "d_2021"), phase="dsmlp")
    assert cli.main(["report", root, "--phase", "dsmlp"]) == 0
    assert "| d | 2 |" in capsys.readouterr().out


def test_a_difference_of_float_noise_prints_as_zero():
    from tfdsmlp.report import mean_sd
    assert 0.3 - (0.1 + 0.2) < 0  # -5.6e-17
    assert mean_sd([0.3 - (0.1 + 0.2)], sign=True) == "+0.00000 ± -"


def test_groups_differing_in_many_settings_or_no_seed_are_not_paired(
        tmp_path):
    root = str(tmp_path)
    _run(root, "a_2021", 2021, 1e-3, 0.70)
    _run(root, "b_2022", 2022, 1e-2, 0.72)  # no shared seed
    assert "paired" not in runs_table(root)


def test_epochs_table_of_a_finished_and_a_running_phase(tmp_path, capsys):
    run = RunDir(str(tmp_path / "run"))
    run.write_config({"data": "/d"})
    with pytest.raises(FileNotFoundError, match="no phase has trained"):
        epochs_table(run.path)
    history = {"val_auc": [0.71, 0.7333, 0.72],
               "val_logloss": [0.52, 0.51, 0.55],
               "learning_rate": [1e-3, 1e-3, 1e-4]}
    os.makedirs(run.phase_dir("teacher"))
    run.write_done("teacher", {}, {"model": "dnn"},
                   {"history": history, "best_epoch": 2})
    # stage 1 still training: its backup's state.json after one epoch
    os.makedirs(run.backup_dir("distill"))
    with open(os.path.join(run.backup_dir("distill"), "state.json"),
              "w") as f:
        json.dump({"epoch": 1, "history": {"val_auc": [0.7],
                                           "val_logloss": [0.5],
                                           "learning_rate": [5e-4]}}, f)
    table = epochs_table(run.path)
    assert "| teacher | 1 | 0.7100 | 0.5200 | 0.001 |  |" in table
    assert "| teacher | 2 | 0.7333 | 0.5100 | 0.001 | yes |" in table
    assert "| teacher | 3 | 0.7200 | 0.5500 | 0.0001 |  |" in table
    assert "| distill (in progress) | 1 | 0.7000 | 0.5000 | 0.0005 |  |" \
        in table
    assert "align" not in table
    assert cli.main(["report", "--epochs", run.path]) == 0
    assert "| teacher | 2 |" in capsys.readouterr().out


def test_run_table_names_the_model_selected_for_export(tmp_path):
    path = str(tmp_path / "run")
    RunDir(path).write_config({"data": "/d"})

    def scores(auc):
        return {s: {"auc": auc, "logloss": 0.5, "rela_impr_vs_teacher": 0.0}
                for s in ("valid", "test")} | {"params": 7}

    phases = {"teacher": scores(0.8) | {"loaded_from": "/t"},
              "student": scores(0.81) | {"train_seconds": 12.6, "epochs": 2},
              "dsmlp": scores(0.805), "dsmlp_main": scores(0.8125)}
    selected = {"phase": "dsmlp_main", "valid_auc": 0.8125,
                "runner_up": "student", "margin": 0.0025}
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump({"phases": phases, "selected": selected,
                   "warnings": ["warning: x"]}, f)
    lines = run_table(path).splitlines()
    # each phase's training seconds; a loaded teacher says so
    assert lines[2].endswith("| 0.8000 | 0.5000 | +0.00% | - | 7 | loaded |")
    assert lines[3].endswith("| 2 | 7 | 13 |")
    assert lines[4].endswith("| - | 7 | - |")
    assert lines[-2:] == [
        ("selected for export: dsmlp_main (valid AUC 0.8125, +0.0025 over "
         "student)"), "warning: x"]
    # a teacher-only run has nothing to select among
    selected.update(phase="teacher", runner_up=None, margin=None)
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump({"phases": phases, "selected": selected}, f)
    assert "selected" not in run_table(path)


def test_unfinished_runs_are_named_not_dropped(tmp_path):
    root = str(tmp_path)
    _run(root, "a_2021", 2021, 1e-3, 0.70)
    _run(root, "a_2022", 2022, 1e-3, 0.72)
    still = os.path.join(root, "a_2023")  # training: config, no metrics
    os.makedirs(still)
    with open(os.path.join(still, "config.yaml"), "w") as f:
        yaml.safe_dump({"data": "/d"}, f)
    os.makedirs(os.path.join(root, "plots"))  # not a run: not named
    note = "Not finished (no metrics.json yet), not in the tables: a_2023."
    table = runs_table(root)
    assert table.endswith(note)
    assert "| a_2023 |" not in table
    os.remove(os.path.join(root, "a_2021", "metrics.json"))
    os.remove(os.path.join(root, "a_2022", "metrics.json"))
    with pytest.raises(FileNotFoundError,
                       match="not finished yet: a_2021, a_2022, a_2023"):
        runs_table(root)


def test_a_reader_that_leaves_early_ends_it_without_a_traceback(tmp_path):
    # `report DIR | head`: the pipe is closed before report writes to it
    repo = str(REPO_ROOT)
    env = dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="2")
    _run(str(tmp_path), "a_2021", 2021, 1e-3, 0.70)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfdsmlp", "report", str(tmp_path)],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
