"""The experiment grid of issue 6 (paper Tables 4-6, Figures 2 and 5) as a
list of jobs, each one `tfdsmlp train` or `tfdsmlp run` invocation.

Every job writes its own run directory; a job whose metrics.json exists is
done, and `run` jobs resume inside a phase, so the whole grid is resumable.
"""

from __future__ import annotations

import dataclasses

GROUPS = ("defaults", "compat", "ablation", "sweep", "width", "frontier",
          "align_lr", "kd")
TEACHERS = ("gdcn", "dcnv2", "finalmlp", "autoint", "xdeepfm")
# Width w: the teacher's MLP is w x 3; the DS-MLP's main MLP w x 3 and its
# parallel MLP (w/2) x 3. The frappe presets are the w = 400 teacher and
# the w = 800 DS-MLP, which reuse the default runs. (1600 is left out: a
# 1600-wide run costs ~15x a 400-wide one on 2 CPU cores.)
WIDTHS = (100, 200, 400, 800)
PRESET_TEACHER_WIDTH, PRESET_STUDENT_WIDTH = 400, 800
# The narrow DS-MLP distilled from every teacher for the frontier.
FRONTIER_WIDTH = 100


@dataclasses.dataclass(frozen=True)
class Job:
    """One run: `command` is "train" or "run"; `overrides` are --set
    values; `teacher_job` names the train job whose weights it loads."""

    name: str
    command: str
    model: str
    seed: int
    overrides: tuple[str, ...] = ()
    teacher_job: str = ""
    width: int = 0
    # (group, row key) pairs: one run can serve several tables, e.g. the
    # default DS-MLP is the "full" ablation row and a compatibility row.
    memberships: tuple[tuple[str, str], ...] = ()
    # A run whose teacher and distillation phases are identical to this
    # job's (same teacher checkpoint, seed and every non-`align.` setting):
    # its finished distill phase is copied instead of being trained again.
    distill_from: str = ""


def _seeded(seed: int, phases=("teacher", "distill", "align")) -> tuple:
    return tuple(f"{p}.train.seed={seed}" for p in phases)


def teacher_job(model: str, seed: int, width: int = 0) -> Job:
    overrides = (f"train.seed={seed}",)
    name = f"teacher_{model}_s{seed}"
    if width:
        name += f"_w{width}"
        overrides += (f"params.hidden_units=[{width},{width},{width}]",)
    return Job(name, "train", model, seed, overrides, width=width)


def dsmlp_job(group: str, key: str, variant: str, teacher: Job, seed: int,
              overrides: tuple[str, ...] = ()) -> Job:
    """A DS-MLP run named by its content (teacher, variant, seed).

    A variant that only changes `align.*` settings shares stage 1 with the
    default run of its teacher and seed (`distill_from`)."""
    name = f"dsmlp_{teacher.model}_{variant}_s{seed}"
    same_stage1 = f"dsmlp_{teacher.model}_full_s{seed}"
    align_only = overrides and all(o.startswith("align.") for o in overrides)
    return Job(name, "run", teacher.model, seed, _seeded(seed) + overrides,
               teacher_job=teacher.name, memberships=((group, key),),
               distill_from=same_stage1 if align_only else "")


def width_overrides(w: int) -> tuple[str, ...]:
    """A DS-MLP of width w: main MLP w x 3, parallel MLP (w/2) x 3."""
    return (f"student.params.main_hidden_units=[{w},{w},{w}]",
            (f"student.params.parallel_hidden_units=[{w // 2},{w // 2},"
            f"{w // 2}]"))


ABLATIONS = {
    "full": (),
    "no_alignment_loss": ("align.alpha=0", "align.beta=0"),
    "no_main_mlp": ("student.model=teacher_parallel",),
    "no_parallel_mlp": ("student.params.use_parallel=false",),
    "no_dual_mlp": ("student.model=dcnv2",
                    ("student.params={embedding_l2: 0.05, "
                    "hidden_units: [800, 800, 800], dropout: 0.2}")),
    "no_kd": ("distill.kd_weight=0",),
}
# Stage-1 variants; the `run` default (no overrides) is train_parallel=true,
# chosen by this comparison (docs/RESULTS.md).
DEFAULTS = {
    "paper": ("distill.train_parallel=false",),
    "train_parallel": (),
    "init_from_teacher": ("distill.train_parallel=false",
                          "distill.init_main_from_teacher=true"),
    "public_code": ("distill.train_parallel=true",
                    "distill.init_main_from_teacher=true",
                    "distill.kd_loss=mse_prob"),
}
# (lambda = 1, alpha = beta = 1 is the default run, added as its own row)
SWEEP = ([(f"lambda{v}", (f"distill.kd_weight={v}",)) for v in (0.5, 2.0)]
         + [(f"ab{a}_{b}", (f"align.alpha={a}", f"align.beta={b}"))
            for a, b in ((0.5, 0.5), (0.8, 1.2), (1.2, 0.8), (1.5, 1.5))])


# Stage 2's starting learning rate (issue 19): the preset's 1e-3 (the
# default run) against lower ones, all fine-tuning the same stage 1.
ALIGN_LEARNING_RATES = (3e-4, 1e-4, 3e-5)


# Where distillation pays (issue 17, paper Figure 5's lambda over seeds):
# stage 1's KD weight lambda on every seed; 0 is the w/o-KD ablation and
# 1 the preset (the default run). The runs are named as the ablation's and
# the sweep's, so a grid holding those groups shares them.
KD_WEIGHTS = (0.0, 0.5, 2.0)


def kd_key(weight: float) -> str:
    """Row of the kd table for KD weight `weight`."""
    return ("0 (w/o KD)" if weight == 0 else
            "1 (preset)" if weight == 1 else f"{weight:g}")


# The kd table's rows and the lambda each stands for (its plot's x axis).
KD_ROW_WEIGHTS = {kd_key(w): w for w in sorted((*KD_WEIGHTS, 1.0))}


def build_plan(groups=GROUPS, seeds=(2021, 2022, 2023),
               teachers=TEACHERS, best_teacher: str = "gdcn") -> list[Job]:
    """All jobs of `groups`, teachers first (runs depend on them)."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"Unknown experiment group(s) {unknown}. "
                         f"Valid groups: {list(GROUPS)}")
    jobs: dict[str, Job] = {}

    def add(job: Job) -> Job:
        old = jobs.get(job.name)
        if old is not None:
            job = dataclasses.replace(
                old, memberships=old.memberships + tuple(
                    m for m in job.memberships if m not in old.memberships))
        jobs[job.name] = job
        return job

    first = seeds[0]
    best = teacher_job(best_teacher, first)
    if "defaults" in groups:
        add(best)
        for name, ov in DEFAULTS.items():
            variant = "full" if not ov else f"defaults_{name}"
            add(dsmlp_job("defaults", name, variant, best, first, ov))
    if "compat" in groups:
        for t in teachers:
            for s in seeds:
                tj = add(teacher_job(t, s))
                add(dsmlp_job("compat", t, "full", tj, s))
    if "ablation" in groups:
        for s in seeds:
            tj = add(teacher_job(best_teacher, s))
            for name, ov in ABLATIONS.items():
                variant = "full" if not ov else f"ablation_{name}"
                add(dsmlp_job("ablation", name, variant, tj, s, ov))
    if "sweep" in groups:
        add(best)
        add(dsmlp_job("sweep", "lambda1_ab1_1", "full", best, first))
        for name, ov in SWEEP:
            add(dsmlp_job("sweep", name, f"sweep_{name}", best, first, ov))
    if "align_lr" in groups:
        add(best)
        add(dsmlp_job("align_lr", "0.001 (preset)", "full", best, first))
        for lr in ALIGN_LEARNING_RATES:
            add(dsmlp_job("align_lr", f"{lr:g}", f"align_lr{lr:g}", best,
                          first, (f"align.train.learning_rate={lr}",)))
    if "kd" in groups:
        for s in seeds:
            tj = add(teacher_job(best_teacher, s))
            add(dsmlp_job("kd", kd_key(1), "full", tj, s))
            for w in KD_WEIGHTS:
                variant, ov = ((("ablation_no_kd", ABLATIONS["no_kd"]))
                               if w == 0 else
                               (f"sweep_lambda{w}", (f"distill.kd_weight={w}",)))
                add(dsmlp_job("kd", kd_key(w), variant, tj, s, ov))
    if "frontier" in groups:  # each teacher, its DS-MLP and a narrow one
        for t in teachers:
            tj = add(teacher_job(t, first))
            add(dsmlp_job("compat", t, "full", tj, first))
            add(dsmlp_job("frontier", t, f"width{FRONTIER_WIDTH}", tj, first,
                          width_overrides(FRONTIER_WIDTH)))
    if "width" in groups or "frontier" in groups:
        add(best)
        for w in WIDTHS:
            if w == PRESET_TEACHER_WIDTH:
                add(dataclasses.replace(best, memberships=(
                    best.memberships + (("width", str(w)),))))
            else:
                tj = teacher_job(best_teacher, first, width=w)
                add(dataclasses.replace(tj, memberships=(("width", str(w)),)))
            if w == PRESET_STUDENT_WIDTH:
                add(dsmlp_job("width", str(w), "full", best, first))
            else:
                add(dsmlp_job("width", str(w), f"width{w}", best, first,
                              width_overrides(w)))
    return sorted(jobs.values(), key=lambda j: j.command != "train")
