"""Command line: a thin argparse front over the library.

    python -m tfdsmlp train --data DIR --model gdcn --preset frappe --out RUN
    python -m tfdsmlp run --data DIR --teacher gdcn --out RUN
    python -m tfdsmlp tune --data DIR --model gdcn --trials 30 --out STUDY
    python -m tfdsmlp export --run RUN --name NAME [--phase best|dsmlp|...]
    python -m tfdsmlp serve-check saved_models/NAME/1 --data DIR
    python -m tfdsmlp predict saved_models/NAME/1 --input F --output OUT
    python -m tfdsmlp explain RUN --out DIR
    python -m tfdsmlp demo --out DIR
"""

from __future__ import annotations

import argparse
import os
import sys

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.cli_parser import PROGRESS_MODES, build_parser

# `train` settings: the teacher's (`--set params.dropout=0.3`).
TEACHER_KEYS = ("model", "params", "train")


def _progress_verbose(args: argparse.Namespace) -> int:
    """`verbose` for `run_dsmlp`: --quiet, --progress, or by default a bar
    on a terminal and lines otherwise (a bar rewritten in place fills a
    log file with backspaces)."""
    if args.quiet:
        return 0
    mode = args.progress or ("bar" if sys.stdout.isatty() else "lines")
    return PROGRESS_MODES[mode]


def _run_config(args: argparse.Namespace, teacher: str):
    """The resolved `RunConfig`; for `train`, whose settings are the
    teacher's, `--set train.X` / `params.X` and a --config file with
    `train:` / `params:` mean the teacher's."""
    from tfdsmlp.training.presets import build_run_config

    skip = [f"{phase}.train.skip_corrupt=true" for phase in
            ("teacher", "distill", "align")] if args.skip_corrupt else []
    overrides = list(args.overrides)
    config = args.config
    if args.command == "train":
        overrides = [f"teacher.{o}" if o.split(".")[0] in TEACHER_KEYS
                     else o for o in overrides]
    return build_run_config(args.preset, teacher, config, overrides + skip,
                            teacher_only=args.command == "train")


def _run(args: argparse.Namespace, teacher: str, until: str, **kwargs):
    """`run_dsmlp` for `train` and `run`; a settings error names where the
    settings came from."""
    from tfdsmlp.config import ConfigError
    from tfdsmlp.training.pipeline import run_dsmlp
    from tfdsmlp.training.presets import describe_sources

    cfg = _run_config(args, teacher)
    try:
        return run_dsmlp(args.data, cfg, args.out,
                         verbose=_progress_verbose(args),
                         deterministic=args.deterministic, until=until,
                         restart_from=args.restart_from, **kwargs)
    except ConfigError as e:
        sources = describe_sources(args.preset, args.config, args.overrides)
        raise ConfigError(f"{e}\n{sources}") from None


def _print_phases(result) -> None:
    print(f"{'phase':<18}{'valid AUC':>10}{'test AUC':>10}{'logloss':>10}"
          f"{'params':>10}")
    for phase, m in result.metrics["phases"].items():
        print(f"{phase:<18}{m['valid']['auc']:>10.4f}{m['test']['auc']:>10.4f}"
              f"{m['test']['logloss']:>10.4f}{m['params']:>10}")
    from tfdsmlp.report import selected_line

    line = selected_line(result.metrics)
    if line:
        print(line)
    for line in result.warnings:
        print(line)


def cmd_train(args: argparse.Namespace) -> int:
    result = _run(args, args.model, "teacher")
    _print_phases(result)
    print(f"-> {args.out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.export_name is not None:  # checked before any work
        from tfdsmlp.export.saved_model import check_model_name

        check_model_name(args.export_name)
    shard = ({"min_shard_rows": args.min_shard_rows}
             if args.min_shard_rows is not None else {})
    teacher_checkpoint = args.teacher_checkpoint
    if teacher_checkpoint is not None:
        from tfdsmlp.tuning.study import teacher_of_study

        teacher_checkpoint = teacher_of_study(
            teacher_checkpoint, lambda line: print(line, file=sys.stderr),
            flag="--teacher-checkpoint")
    result = _run(args, args.teacher, "align", strategy=args.strategy,
                  teacher_checkpoint=teacher_checkpoint, **shard)
    _print_phases(result)
    if args.export_name is not None and result.chief:  # chief exports
        from tfdsmlp.export.run_models import export_run, selected_phase

        for phase, name in ((selected_phase(args.out), args.export_name),
                            ("teacher", f"{args.export_name}_teacher")):
            print(f"exported {phase}: "
                  f"{export_run(args.out, name, phase, data_dir=args.data)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tfdsmlp.report import report

    print(report(args.path, epochs=args.epochs, phase=args.phase,
                 sweep=args.sweep, plot=args.plot))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from tfdsmlp.bench import format_bench, run_bench, write_result

    if args.peer or args.cpp_serving:
        return _bench_peer_and_serving(args)

    if args.convert_only and not args.criteo_file:
        print("python -m tfdsmlp bench: error: --convert-only needs "
              "--criteo-file FILE", file=sys.stderr)
        return 2
    if not args.convert_only and not args.data:
        print("python -m tfdsmlp bench: error: --data DIR is required "
              "(unless --convert-only)", file=sys.stderr)
        return 2
    saved = dict(item.split("=", 1) for item in args.saved_model)
    result = run_bench(args.data, preset=args.preset,
                       teachers=tuple(args.teachers.split(",")),
                       batch_size=args.batch_size, steps=args.steps,
                       repeats=args.repeats, saved_models=saved,
                       criteo_file=args.criteo_file,
                       convert_rows=args.convert_rows,
                       sparse_rows=args.sparse_rows,
                       infer_only=args.infer_only,
                       convert_only=args.convert_only,
                       steps_per_execution=args.steps_per_execution)
    print(format_bench(result))
    if args.json:
        write_result(result, args.json)
    return 0


def _bench_peer_and_serving(args: argparse.Namespace) -> int:
    from tfdsmlp.bench import write_result
    from tfdsmlp.peer.runner import (
        PeerBenchConfig,
        format_peer_bench,
        run_peer_bench,
    )
    from tfdsmlp.serving_bench.harness import format_serving, time_export

    if not args.data:
        print("python -m tfdsmlp bench: error: --peer and --cpp-serving "
              "need --data DIR", file=sys.stderr)
        return 2
    result = {}
    if args.peer:
        cfg = PeerBenchConfig(
            data_dir=args.data, preset=args.preset,
            models=tuple(args.peer_models.split(",")),
            peer_python=args.peer_python, rounds=args.rounds,
            batch_size=args.batch_size, steps=args.steps,
            repeats=args.repeats, jit_compile=args.jit_compile,
            precision=args.precision, cpp_serving=not args.no_cpp)
        result["peer"] = run_peer_bench(
            cfg, log=lambda m: print(m, file=sys.stderr))
        print(format_peer_bench(result["peer"]))
    if args.cpp_serving:
        result["cpp_serving"] = {
            name: time_export(path, args.data, (1, args.batch_size),
                              args.repeats)
            for name, path in (item.split("=", 1)
                               for item in args.cpp_serving)}
        print(format_serving(result["cpp_serving"]))
    if args.json:
        write_result(result, args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tfdsmlp.export.run_models import export_run, selected_phase

    phase = (selected_phase(args.run) if args.phase == "best"
             else args.phase)
    try:
        path = export_run(args.run, args.name, phase, args.version,
                          args.base_dir, args.data, args.jit_compile,
                          args.precision)
    except FileExistsError as e:
        raise ValueError(str(e)) from None
    print(f"exported {phase}: {path}")
    return 0


def cmd_serve_check(args: argparse.Namespace) -> int:
    import json

    from tfdsmlp.servecheck.check import format_report, serve_check

    rep = serve_check(args.path, args.data, split=args.split,
                      rows=args.rows, run_dir=args.run, phase=args.phase,
                      iters=args.iters, batch=args.batch)
    print(format_report(rep))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rep, f, indent=2)
    return 0 if rep["ok"] else 1


def cmd_predict(args: argparse.Namespace) -> int:
    from tfdsmlp.predict import predict_file

    delimiter = {"tab": "\t", "\\t": "\t"}.get(args.delimiter,
                                               args.delimiter)
    result = predict_file(args.path, args.input, args.output,
                          input_format=args.format,
                          batch_size=args.batch_size, delimiter=delimiter,
                          progress=not args.quiet)
    print(f"predicted {result['rows']} rows -> {args.output}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from tfdsmlp.tuning.space_file import load_space
    from tfdsmlp.tuning.study import describe, run_study

    space = load_space(args.space, args.model) if args.space else None
    if args.model == "dsmlp" and args.pruner == "median":
        print("warning: --pruner median judges a DS-MLP trial from its "
              "first distillation epoch on, which says little about where "
              "it ends (on Frappe it cut 25 of 30 trials there: "
              "docs/TUNING.md, 'Pruning and divergence'); the default, "
              "stalled, waits until a trial stops improving.",
              file=sys.stderr)
    result = run_study(args.data, args.model, args.out, trials=args.trials,
                       time_budget=args.time_budget, preset=args.preset,
                       overrides=args.overrides, seed=args.seed,
                       pruner=args.pruner, space=space,
                       warm_start=args.warm_start,
                       base_trial=args.base_trial,
                       search=(args.search.split(",") if args.search
                               is not None else None),
                       deterministic=args.deterministic,
                       log=None if args.quiet else print,
                       teacher=args.teacher)
    for line in describe(result):
        print(line)
    return 0 if result.best_yaml else 1


def cmd_serve_cluster_task(args: argparse.Namespace) -> int:
    from tfdsmlp.training.parameter_server import serve_task

    serve_task()
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from tfdsmlp.explain import explain_run, format_summary

    summary = explain_run(args.run, args.out, split=args.split,
                          count=args.count, confidence=args.confidence,
                          max_rows=args.rows, batch_size=args.batch_size,
                          data_dir=args.data, truth=args.truth)
    print(format_summary(summary))
    print(f"-> {args.out}/explain.json, explain.csv"
          + (", explain.png" if summary["shown"] else ""))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tfdsmlp.demo import run_demo

    run_demo(args.out, rows=args.rows, seed=args.seed)
    return 0


COMMANDS = {"train": cmd_train, "run": cmd_run, "report": cmd_report,
            "bench": cmd_bench,
            "tune": cmd_tune, "explain": cmd_explain,
            "serve-cluster-task": cmd_serve_cluster_task,
            "demo": cmd_demo,
            "export": cmd_export, "serve-check": cmd_serve_check,
            "predict": cmd_predict}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe fails here, not at exit
        return code
    except BrokenPipeError:
        # The reader left (`report DIR | head`): no traceback; stdout goes
        # to /dev/null so that the flush at exit does not fail again
        # (the recipe of Python's `signal` documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a piped command
    except (ValueError, FileNotFoundError) as e:
        print(f"tfdsmlp {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from tfdsmlp.training.callbacks import NonFiniteLossError
        from tfdsmlp.training.pipeline import PhaseDivergedError

        if not isinstance(e, (NonFiniteLossError, PhaseDivergedError)):
            raise
        print(f"tfdsmlp {args.command}: error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
