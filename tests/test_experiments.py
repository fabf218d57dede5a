"""Experiment plan, commands and aggregation (no training here)."""

import json
import os
import sys

from tfdsmlp.experiments import runner
from tfdsmlp.experiments.__main__ import write_results
from tfdsmlp.experiments.aggregate import markdown, paired_delta
from tfdsmlp.experiments.plan import Job, build_plan
from tfdsmlp.experiments.runner import command, job_dir, run_jobs

import pytest


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


def _fake_metrics(path, auc, teacher_auc, params=None):
    """metrics.json of a finished run (with `params`: each phase's weight
    count too, as the frontier reads it)."""
    os.makedirs(path, exist_ok=True)
    split = lambda a: {"auc": a, "logloss": 0.2}
    phase = lambda a: ({"valid": split(a), "test": split(a)}
                       | ({} if params is None else {"params": params}))
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
    assert "- gdcn: DS-MLP 0.9850 is above its teacher's 0.9700 (+0.0150, " \
           "2 runs)" in text
    assert "(gdcn, 0.9700): +0.0150 (target >= +0.0010: met)" in text
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nkept\n")
    write_results(str(results), text)
    write_results(str(results), "second")
    body = results.read_text()
    assert "kept" in body and "second" in body and "0.9850" not in body


def test_width_group_scales_both_streams_and_reuses_the_preset_runs():
    jobs = {j.name: j for j in build_plan(groups=("width",), seeds=(3,))}
    assert ("width", "400") in jobs["teacher_gdcn_s3"].memberships
    assert ("width", "800") in jobs["dsmlp_gdcn_full_s3"].memberships
    w100 = jobs["dsmlp_gdcn_width100_s3"]
    assert "student.params.main_hidden_units=[100,100,100]" in w100.overrides
    assert ("student.params.parallel_hidden_units=[50,50,50]"
            in w100.overrides)
    assert ("params.hidden_units=[200,200,200]"
            in jobs["teacher_gdcn_s3_w200"].overrides)
    assert not any("1600" in name for name in jobs)


def test_frontier_group_adds_each_teacher_at_the_first_seed_only():
    names = {j.name for j in build_plan(groups=("frontier",), seeds=(5, 6),
                                        teachers=("gdcn", "xdeepfm"))}
    assert {"teacher_xdeepfm_s5", "dsmlp_xdeepfm_full_s5",
            "dsmlp_xdeepfm_width100_s5", "dsmlp_gdcn_width100_s5"} <= names
    assert not any(name.endswith("_s6") for name in names)


def test_only_selects_jobs_in_pattern_order():
    from tfdsmlp.experiments.__main__ import select

    jobs = build_plan(groups=("width",), seeds=(3,))
    chosen = select(jobs, "dsmlp_gdcn_width2*,teacher_gdcn_s3_w1*")
    assert [j.name for j in chosen] == ["dsmlp_gdcn_width200_s3",
                                        "teacher_gdcn_s3_w100"]
    assert select(jobs, None) == jobs
    with pytest.raises(SystemExit, match="matches none"):
        select(jobs, "nothing*")


def _model(label, kind, teacher, auc, big, p50):
    return {"label": label, "kind": kind, "teacher": teacher,
            "test_auc": auc, "params": 10, "batch4096_examples_per_s": big,
            "batch1_p50_ms": p50, "batch1_p99_ms": 2 * p50}


def test_frontier_picks_the_fastest_better_dsmlp_no_slower_anywhere():
    from tfdsmlp.experiments.frontier import (
        best_replacements,
        frontier_markdown,
    )

    models = [_model("teacher_gdcn", "teacher", "gdcn", 0.984, 100.0, 0.5),
              _model("teacher_finalmlp", "teacher", "finalmlp", 0.986,
                     200.0, 0.5),
              # fastest, but worse than both teachers
              _model("dsmlp_gdcn_w100", "dsmlp", "gdcn", 0.983, 900.0, 0.3),
              # beats both; 1.5x finalmlp (short of 2x), 3x gdcn
              _model("dsmlp_gdcn_w200", "dsmlp", "gdcn", 0.987, 300.0, 0.4),
              # better AUC but slower at batch 1
              _model("dsmlp_gdcn", "dsmlp", "gdcn", 0.988, 150.0, 0.9)]
    found = {r["teacher"]["teacher"]: r for r in best_replacements(models)}
    assert found["gdcn"]["dsmlp"]["label"] == "dsmlp_gdcn_w200"
    assert found["gdcn"]["ratio"] == pytest.approx(3.0)
    assert found["finalmlp"]["ratio"] == pytest.approx(1.5)
    assert found["finalmlp"]["need"] == 2.0
    own = _model("dsmlp_finalmlp_w200", "dsmlp", "finalmlp", 0.987, 250.0,
                 0.45)  # slower than dsmlp_gdcn_w200, but finalmlp's own
    picked = {r["teacher"]["teacher"]: r["dsmlp"]["label"]
              for r in best_replacements(models + [own])}
    assert picked == {"gdcn": "dsmlp_gdcn_w200",
                      "finalmlp": "dsmlp_finalmlp_w200"}
    text = frontier_markdown({"models": models, "rounds": 3, "cpus": 2,
                              "measured_at": "t",
                              "load_average_before": 0.1})
    assert "| gdcn | 0.9840 | dsmlp_gdcn_w200 | 0.9870 | 3.00x | >= 2x | " \
           "yes |" in text
    assert "| finalmlp | 0.9860 | dsmlp_gdcn_w200 | 0.9870 | 1.50x | " \
           ">= 2x | no |" in text
    models[3]["test_auc"] = 0.985  # now nothing beats finalmlp in time
    assert "| finalmlp | 0.9860 | none |" in frontier_markdown(
        {"models": models, "rounds": 1, "cpus": 2, "measured_at": "t",
         "load_average_before": 0.1})


def test_frontier_is_judged_by_the_cpp_serving_path_when_measured():
    from tfdsmlp.experiments.frontier import (
        best_replacements,
        frontier_markdown,
    )

    teacher = _model("teacher_gdcn", "teacher", "gdcn", 0.984, 100.0, 0.5)
    # in this process the DS-MLP is slower than its teacher at batch 1
    dsmlp = _model("dsmlp_gdcn", "dsmlp", "gdcn", 0.987, 300.0, 0.6)
    result = {"models": [teacher, dsmlp], "rounds": 1, "cpus": 2,
              "measured_at": "t", "load_average_before": 0.1,
              "cpp_error": "no C compiler"}
    assert best_replacements(result["models"])[0]["dsmlp"] is None
    text = frontier_markdown(result)
    assert "C++ serving path not timed: no C compiler." in text
    assert "| gdcn | 0.9840 | none |" in text
    # in the C++ path it is faster at both batch sizes: judged by that
    teacher.update(cpp_batch4096_examples_per_s=200.0, cpp_batch1_p50_ms=0.3,
                   cpp_batch1_p99_ms=0.4)
    dsmlp.update(cpp_batch4096_examples_per_s=500.0, cpp_batch1_p50_ms=0.2,
                 cpp_batch1_p99_ms=0.3)
    result["cpp_error"] = None
    assert best_replacements(result["models"])[0]["ratio"] == \
        pytest.approx(2.5)
    text = frontier_markdown(result)
    assert "judged below: C++ serving path" in text
    assert ("| dsmlp_gdcn | gdcn | 0.9870 | 10 | 300 | 0.60 | 1.20 | 500 | "
            "0.20 | 0.30 |") in text
    assert "C++ batch-1 p50 ms" in text
    assert "| gdcn | 0.9840 | dsmlp_gdcn | 0.9870 | 2.50x | >= 2x | yes |" \
        in text


def test_frontier_entries_from_finished_runs(tmp_path):
    from tfdsmlp.experiments.frontier import frontier_entries

    jobs = build_plan(groups=("frontier",), seeds=(1,), teachers=("gdcn",))
    for job in jobs:
        if job.command == "run":
            _fake_metrics(job_dir(str(tmp_path), job), 0.99, 0.98,
                          params=7)
    labels = {e["label"]: e for e in frontier_entries(jobs, str(tmp_path))}
    assert set(labels) == {"teacher_gdcn", "dsmlp_gdcn", "dsmlp_gdcn_w100",
                           "dsmlp_gdcn_w200", "dsmlp_gdcn_w400"}
    assert labels["teacher_gdcn"]["phase"] == "teacher"
    assert labels["teacher_gdcn"]["test_auc"] == 0.98
    assert labels["dsmlp_gdcn_w100"]["test_auc"] == 0.99


def test_frontier_teachers_need_only_their_own_runs(tmp_path):
    # the DS-MLPs of dcnv2 not trained yet: its teacher is still a row,
    # from the teacher's own run directory
    from tfdsmlp.experiments.frontier import frontier_entries

    jobs = build_plan(groups=("frontier",), seeds=(1,),
                      teachers=("gdcn", "dcnv2"))
    done = {"teacher_dcnv2_s1", "dsmlp_dcnv2_width100_s1"}
    for job in jobs:
        if job.name in done:
            _fake_metrics(job_dir(str(tmp_path), job), 0.99, 0.98,
                          params=7)
    labels = {e["label"]: e for e in frontier_entries(jobs, str(tmp_path))}
    assert set(labels) == {"teacher_dcnv2", "dsmlp_dcnv2_w100"}
    assert labels["teacher_dcnv2"]["run"] == job_dir(
        str(tmp_path), next(j for j in jobs if j.name == "teacher_dcnv2_s1"))
    assert labels["teacher_dcnv2"]["phase"] == "teacher"


def test_report_only_reads_the_last_frontier_measurement(tmp_path):
    from tfdsmlp.experiments.__main__ import main

    models = [_model("teacher_gdcn", "teacher", "gdcn", 0.984, 100.0, 0.5),
              _model("dsmlp_gdcn_w100", "dsmlp", "gdcn", 0.987, 300.0, 0.4)]
    (tmp_path / "frontier.json").write_text(json.dumps(
        {"models": models, "rounds": 3, "cpus": 2, "measured_at": "t",
         "load_average_before": 0.1}))
    results = tmp_path / "R.md"
    assert main(["frappe", "--out", str(tmp_path), "--groups", "frontier",
                 "--report-only", "--results", str(results)]) == 0
    body = results.read_text()
    assert "### AUC vs inference cost (frontier)" in body
    assert "| gdcn | 0.9840 | dsmlp_gdcn_w100 | 0.9870 | 3.00x |" in body
    assert (tmp_path / "plots" / "frontier.png").exists()


def test_align_only_variants_reuse_the_default_runs_stage_1(tmp_path):
    from tfdsmlp.experiments.runner import reuse_distill
    jobs = {j.name: j for j in build_plan(groups=("ablation", "sweep"),
                                          seeds=(7,))}
    assert (jobs["dsmlp_gdcn_ablation_no_alignment_loss_s7"].distill_from
            == "dsmlp_gdcn_full_s7")
    assert jobs["dsmlp_gdcn_sweep_ab0.5_0.5_s7"].distill_from == (
        "dsmlp_gdcn_full_s7")
    for name in ("dsmlp_gdcn_full_s7", "dsmlp_gdcn_ablation_no_kd_s7",
                 "dsmlp_gdcn_ablation_no_parallel_mlp_s7",
                 "dsmlp_gdcn_sweep_lambda0.5_s7"):
        assert jobs[name].distill_from == "", name
    job = jobs["dsmlp_gdcn_ablation_no_alignment_loss_s7"]
    src = tmp_path / "runs" / "dsmlp_gdcn_full_s7" / "distill"
    (src / "weights").mkdir(parents=True)
    (src / "weights" / "model.index").write_text("w")
    log = []
    assert not reuse_distill(job, str(tmp_path), log.append)  # unfinished
    (src / "done.json").write_text("{}")
    assert reuse_distill(job, str(tmp_path), log.append)
    dst = tmp_path / "runs" / job.name / "distill"
    assert (dst / "done.json").exists()
    assert (dst / "weights" / "model.index").read_text() == "w"
    assert "copied from dsmlp_gdcn_full_s7" in log[0]
    assert not reuse_distill(job, str(tmp_path), log.append)  # already there


def test_ablation_paired_delta_and_width_table(tmp_path):
    jobs = build_plan(groups=("ablation", "width"), seeds=(1, 2))
    out = str(tmp_path)
    for name, auc in (("dsmlp_gdcn_full_s1", 0.98),
                      ("dsmlp_gdcn_full_s2", 0.99),
                      ("dsmlp_gdcn_ablation_no_kd_s1", 0.975),
                      ("dsmlp_gdcn_width100_s1", 0.985)):
        _fake_metrics(os.path.join(out, "runs", name), auc, 0.97)
    w100 = os.path.join(out, "runs", "teacher_gdcn_s1_w100")
    os.makedirs(w100)
    with open(os.path.join(w100, "metrics.json"), "w") as f:
        json.dump({"phases": {"teacher": {
            "valid": {"auc": 0.96, "logloss": 0.3},
            "test": {"auc": 0.965, "logloss": 0.31}}}}, f)
    text = markdown(jobs, out, os.path.join(out, "plots"), "cmd")
    # no_kd has seed 1 only: compared with full's seed 1 (0.98), not the
    # mean over full's two seeds (0.985)
    assert "| no_kd | 1 |" in text and "| -0.0050 (1) |" in text
    assert "| full | 2 |" in text and "| 0.9850 ± 0.0050 | 0.2000 ± " \
           "0.0000 | - |" in text
    assert "| 100 | 0.9650 | 0.3100 | 0.9850 | 0.2000 | 0.9850 |" in text
    # w = 800 is the preset DS-MLP (full run); its teacher is unfinished
    assert "| 800 | - | - | 0.9800 | 0.2000 | 0.9800 |" in text


def test_paired_delta_rounding_to_zero_prints_plus():
    job = lambda name, seed: Job(name, "run", "gdcn", seed)
    rows = {("ablation", "full"): [(job("a", 1), {"test": {"auc": 0.98}}, {})],
            ("ablation", "x"): [(job("b", 1),
                                 {"test": {"auc": 0.98 - 1e-6}}, {})]}
    assert paired_delta(rows, "ablation", "x", "full") == "+0.0000 (1)"
    assert paired_delta(rows, "ablation", "full", "full") == "-"


def test_align_lr_group_fine_tunes_the_default_runs_stage_1():
    jobs = build_plan(groups=("align_lr",), seeds=(7,))
    runs = {j.name: j for j in jobs if j.command == "run"}
    assert set(runs) == {"dsmlp_gdcn_full_s7",
                         "dsmlp_gdcn_align_lr0.0003_s7",
                         "dsmlp_gdcn_align_lr0.0001_s7",
                         "dsmlp_gdcn_align_lr3e-05_s7"}
    for name, job in runs.items():
        if name != "dsmlp_gdcn_full_s7":
            assert job.distill_from == "dsmlp_gdcn_full_s7"
            assert job.overrides[-1].startswith("align.train.learning_rate=")
    assert ("align_lr", "0.001 (preset)") in runs[
        "dsmlp_gdcn_full_s7"].memberships


def test_kd_group_covers_every_seed_and_shares_ablation_and_sweep_runs():
    jobs = build_plan(groups=("kd", "ablation", "sweep"), seeds=(1, 2))
    names = [j.name for j in jobs]
    assert len(names) == len(set(names))
    kd = {}
    for j in jobs:
        for group, key in j.memberships:
            if group == "kd":
                kd.setdefault(key, []).append(j)
    assert sorted(kd) == ["0 (w/o KD)", "0.5", "1 (preset)", "2"]
    for key, runs in kd.items():
        assert sorted(j.seed for j in runs) == [1, 2], key
        # stage 1 changes with lambda: none of them copies another's
        assert all(not j.distill_from for j in runs)
    no_kd = {j.name for j in kd["0 (w/o KD)"]}
    assert no_kd == {"dsmlp_gdcn_ablation_no_kd_s1",
                     "dsmlp_gdcn_ablation_no_kd_s2"}
    assert all(("ablation", "no_kd") in j.memberships
               for j in kd["0 (w/o KD)"])
    half = next(j for j in kd["0.5"] if j.seed == 1)
    assert ("sweep", "lambda0.5") in half.memberships
    assert half.overrides[-1] == "distill.kd_weight=0.5"


def test_kd_table_and_plot(tmp_path):
    jobs = build_plan(groups=("kd",), seeds=(1, 2))
    out = str(tmp_path)
    aucs = {"full": (0.980, 0.982), "ablation_no_kd": (0.978, 0.979),
            "sweep_lambda0.5": (0.981, 0.981),
            "sweep_lambda2.0": (0.979, 0.983)}
    for variant, pair in aucs.items():
        for seed, auc in zip((1, 2), pair):
            _fake_metrics(os.path.join(out, "runs",
                                       f"dsmlp_gdcn_{variant}_s{seed}"),
                          auc, 0.97)
    text = markdown(jobs, out, os.path.join(out, "plots"), "cmd")
    assert "### Where distillation pays" in text
    # w/o KD against lambda = 1 on the same seeds: mean(-0.002, -0.003)
    assert "| 0 (w/o KD) | 2 | 0.9700 ± 0.0000 |" in text
    assert "| -0.0025 (2) |" in text
    assert "| 1 (preset) | 2 |" in text and "| 0.9810 ± 0.0010 |" in text
    rows = [line.split(" | ")[0] for line in text.splitlines()
            if line.startswith(("| 0", "| 1", "| 2"))]
    assert rows == ["| 0 (w/o KD)", "| 0.5", "| 1 (preset)", "| 2"]
    assert os.path.exists(os.path.join(out, "plots", "kd.png"))
    assert "![KD weight](plots/kd.png)" in text


def test_planted_shapes_need_data(capsys):
    from tfdsmlp.experiments.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(["criteo", "--out", "x", "--groups", "kd", "--dry-run"])
    assert e.value.code == 2
    assert "criteo needs --data DIR" in capsys.readouterr().err


def test_run_jobs_appends_each_log_and_gives_an_eta(tmp_path, monkeypatch):
    jobs = [j for j in build_plan(groups=("compat",), seeds=(1, 2),
                                  teachers=("gdcn",)) if j.command == "run"]
    monkeypatch.setattr(runner, "command", lambda job, *_: [
        sys.executable, "-c", f"print('trained {job.name}')"])
    lines = []
    out = str(tmp_path)
    for _ in range(2):  # a rerun: nothing finished (no metrics.json)
        assert run_jobs(jobs, "DATA", out, log=lines.append) == []
    log = (tmp_path / "logs" / f"{jobs[0].name}.log").read_text()
    assert log.splitlines().count(f"trained {jobs[0].name}") == 2  # both
    assert log.count("=== ") == 2 and sys.executable in log
    assert any(line.startswith(f"[experiments] 1/2 {jobs[0].name} ok in "
                               "0:00:0") and "; ETA 0:00:0" in line
               and "for the 1 left" in line for line in lines)
    assert any(line.startswith(f"[experiments] 2/2 {jobs[1].name} ok in ")
               and "ETA" not in line for line in lines)
