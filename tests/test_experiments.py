"""Experiment plan, commands and aggregation (no training here)."""

import json
import os

import pytest

from tfdsmlp.experiments.__main__ import write_results
from tfdsmlp.experiments.aggregate import markdown
from tfdsmlp.experiments.plan import build_plan
from tfdsmlp.experiments.runner import command, job_dir, run_jobs


def test_plan_shares_identical_runs_and_orders_teachers_first():
    jobs = build_plan(seeds=(1, 2), teachers=("gdcn", "dcnv2"))
    names = [j.name for j in jobs]
    assert len(names) == len(set(names))
    full = next(j for j in jobs if j.name == "dsmlp_gdcn_full_s1")
    assert set(full.memberships) >= {("defaults", "train_parallel"),
                                     ("compat", "gdcn"),
                                     ("ablation", "full")}
    first_run = next(i for i, j in enumerate(jobs) if j.command == "run")
    assert all(j.command == "train" for j in jobs[:first_run])
    teachers = {j.name for j in jobs if j.command == "train"}
    assert all(j.teacher_job in teachers for j in jobs if j.command == "run")


def test_unknown_group_is_an_error():
    with pytest.raises(ValueError, match="Valid groups"):
        build_plan(groups=("compat", "ablations"))


def test_commands_load_the_teacher_and_pass_overrides(tmp_path):
    jobs = build_plan(groups=("ablation",), seeds=(7,))
    job = next(j for j in jobs if "no_kd" in j.name)
    cmd = command(job, "DATA", str(tmp_path), "frappe")
    assert cmd[2:4] == ["tfdsmlp", "run"]
    assert "distill.kd_weight=0" in cmd
    i = cmd.index("--teacher-checkpoint")
    assert "teacher_gdcn_s7" in cmd[i + 1]


def _fake_metrics(path, auc, teacher_auc):
    os.makedirs(path, exist_ok=True)
    split = lambda a: {"auc": a, "logloss": 0.2}  # noqa: E731
    phase = lambda a: {"valid": split(a), "test": split(a)}  # noqa: E731
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump({"phases": {"teacher": phase(teacher_auc),
                              "student": phase(auc - 0.001),
                              "dsmlp": phase(auc)}}, f)


def test_markdown_tables_mean_and_std_and_results_markers(tmp_path):
    jobs = build_plan(groups=("compat",), seeds=(1, 2), teachers=("gdcn",))
    for job, auc in zip([j for j in jobs if j.command == "run"],
                        (0.98, 0.99)):
        _fake_metrics(job_dir(str(tmp_path), job), auc, 0.97)
    # finished jobs are skipped: nothing to run
    assert run_jobs([j for j in jobs if j.command == "run"], "DATA",
                    str(tmp_path), log=lambda *_: None) == []
    text = markdown(jobs, str(tmp_path), str(tmp_path / "plots"), "cmd")
    assert "| gdcn | 2 | 0.9700 ± 0.0000 | 0.2000 ± 0.0000 | " \
           "0.9850 ± 0.0050 | 0.9850 ± 0.0050 |" in text
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nkept\n")
    write_results(str(results), text)
    write_results(str(results), "second")
    body = results.read_text()
    assert "kept" in body and "second" in body and "0.9850" not in body
