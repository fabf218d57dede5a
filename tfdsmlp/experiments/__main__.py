"""python -m tfdsmlp.experiments frappe|criteo|avazu --out DIR [options]

frappe converts ../shared/data/frappe (unless --data is given); criteo and
avazu need --data: a dataset of that shape, e.g. the planted data of
`python -m data_tools synth --profile criteo` (the shared samples are too
small for these comparisons). Each uses the preset of its name. Runs every job of
the chosen groups (resumable: finished jobs are skipped, interrupted runs
resume), then writes the tables and plots into docs/RESULTS.md between the
`experiments` markers. The `frontier` group also exports every teacher and
DS-MLP of the first seed (OUT/saved_models) and times them side by side
(OUT/frontier.json), in this process and in the C++ serving path
(TensorFlow's C API, as TF Serving runs them; needs a C compiler, else it
says so), judged by the C++ figures: AUC against inference cost. Variants that change only
`align.*` settings (no alignment loss, the alpha/beta sweep) copy the
finished stage 1 of the default run with the same teacher and seed instead
of training the same distillation again.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys

import tfdsmlp  # noqa: F401
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.experiments.aggregate import markdown
from tfdsmlp.experiments.frontier import (
    frontier_entries,
    frontier_markdown,
    measure,
)
from tfdsmlp.experiments.plan import GROUPS, TEACHERS, build_plan
from tfdsmlp.experiments.runner import run_jobs

BEGIN, END = "<!-- experiments:begin -->", "<!-- experiments:end -->"
FRAPPE_FIELDS = ("user,item,daytime,weekday,isweekend,homework,cost,"
                 "weather,country,city")


def prepare_frappe(out_dir: str) -> str:
    data = os.path.join(out_dir, "data")
    if DatasetDir.exists(data):
        return data
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    src = os.path.join(os.path.dirname(root), "shared", "data", "frappe")
    if not os.path.isdir(src):
        raise SystemExit(f"{src} not found: pass --data DIR (a converted "
                         "Frappe dataset directory).")
    subprocess.run([sys.executable, "-m", "data_tools", "convert",
                    "--format", "csv",
                    "--train", os.path.join(src, "train.csv"),
                    "--valid", os.path.join(src, "valid.csv"),
                    "--test", os.path.join(src, "test.csv"),
                    "--label", "label", "--categorical", FRAPPE_FIELDS,
                    "--out", data], check=True)
    return data


def write_results(path: str, text: str) -> None:
    old = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old + ("\n" if old else "") + "## Experiments\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)


def select(jobs, patterns: str | None):
    """The jobs matching `patterns` (comma-separated fnmatch patterns),
    ordered by the first pattern each matches; all jobs without patterns."""
    if not patterns:
        return jobs
    chosen = []
    for pattern in patterns.split(","):
        chosen += [j for j in jobs if fnmatch.fnmatchcase(j.name, pattern)
                   and j not in chosen]
    if not chosen:
        raise SystemExit(f"--only {patterns!r} matches none of the "
                         f"{len(jobs)} jobs: {[j.name for j in jobs]}")
    return chosen


def frontier_section(args, jobs, data, plot_dir: str) -> str:
    """Measures the frontier (or, with --report-only, reads its last
    measurement) and returns its Markdown."""
    path = os.path.join(args.out, "frontier.json")
    if data is not None:
        entries = frontier_entries(jobs, args.out)
        if not entries:
            return ""
        result = measure(entries, args.out, data,
                         rounds=args.frontier_rounds)
    elif os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
    else:
        return ""
    return ("### AUC vs inference cost (frontier)\n\n"
            + frontier_markdown(result, os.path.join(plot_dir,
                                                     "frontier.png")) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfdsmlp.experiments",
                                description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dataset", choices=["frappe", "criteo", "avazu"],
                   help="Which dataset shape: the jobs use the preset of "
                        "the same name. criteo and avazu need --data.")
    p.add_argument("--out", required=True,
                   help="Experiment directory (runs/, logs/, data/).")
    p.add_argument("--data", help="Converted dataset directory; default "
                                  "(frappe only): convert "
                                  "../shared/data/frappe into OUT/data.")
    p.add_argument("--groups", default=",".join(GROUPS),
                   help=f"Comma-separated subset of {','.join(GROUPS)}.")
    p.add_argument("--seeds", default="2021,2022,2023",
                   help="Comma-separated seeds (default 2021,2022,2023).")
    p.add_argument("--teachers", default=",".join(TEACHERS),
                   help="Teachers for the compatibility table.")
    p.add_argument("--best-teacher", default="gdcn",
                   help="Teacher of the ablation, sweep and width groups.")
    p.add_argument("--results", default="docs/RESULTS.md",
                   help="Markdown file to update (between markers).")
    p.add_argument("--only", metavar="PATTERNS",
                   help="Run only the jobs whose names match one of these "
                        "comma-separated shell patterns (e.g. "
                        "'dsmlp_gdcn_width*'), in this order; the report "
                        "still covers every finished job of the groups.")
    p.add_argument("--dry-run", action="store_true",
                   help="Print the commands of unfinished jobs; run none.")
    p.add_argument("--report-only", action="store_true",
                   help="Only rewrite the results from finished jobs (and "
                        "the frontier from OUT/frontier.json).")
    p.add_argument("--remeasure", action="store_true",
                   help="With --report-only: time the frontier's "
                        "finished models again instead of reading "
                        "OUT/frontier.json.")
    p.add_argument("--frontier-rounds", type=int, default=3,
                   help="Interleaved timing rounds of the frontier group "
                        "(the median counts). Default: 3.")
    args = p.parse_args(argv)
    if args.dataset != "frappe" and not args.data:
        p.error(f"{args.dataset} needs --data DIR: a converted "
                f"{args.dataset}-shaped dataset, e.g. `python -m data_tools "
                f"synth --profile {args.dataset} --rows 1000000 --out DIR`.")
    jobs = build_plan(groups=tuple(args.groups.split(",")),
                      seeds=tuple(int(s) for s in args.seeds.split(",")),
                      teachers=tuple(args.teachers.split(",")),
                      best_teacher=args.best_teacher)
    failed = []
    data = None
    if not args.report_only:
        data = args.data or prepare_frappe(args.out)
        failed = run_jobs(select(jobs, args.only), data, args.out,
                          preset=args.dataset, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    if args.report_only and args.remeasure:
        data = args.data or prepare_frappe(args.out)
    command_line = "python -m tfdsmlp.experiments " + " ".join(
        argv if argv is not None else sys.argv[1:])
    plot_dir = os.path.join(os.path.dirname(args.results) or ".", "plots")
    text = markdown(jobs, args.out, plot_dir, command_line)
    if "frontier" in args.groups.split(","):
        text += "\n" + frontier_section(args, jobs, data, plot_dir)
    write_results(args.results, text)
    print(f"[experiments] wrote {args.results}")
    if failed:
        print(f"[experiments] {len(failed)} job(s) failed: "
              f"{[j.name for j in failed]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
