"""Command line: a thin argparse front over the library.

    python -m tfdsmlp train --data DIR --model gdcn --preset frappe --out RUN
    python -m tfdsmlp demo --out DIR
"""

from __future__ import annotations

import argparse
import os
import sys

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.yaml",
                   help="YAML file overriding the preset (unknown keys are "
                        "errors).")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="Override one config value, e.g. "
                        "--set train.learning_rate=0.0005 or "
                        "--set params.dropout=0.3 (repeatable; YAML "
                        "syntax for the value).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfdsmlp",
        description="DS-MLP for CTR prediction: train teachers and "
                    "baselines, run the demo.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "train", help="Train one model (teacher or baseline) with a preset.",
        description="Train one CTR model with FuxiCTR's schedule (exact "
                    "validation AUC every epoch, lr x0.1 on plateau, early "
                    "stop, best weights restored) and report exact test "
                    "AUC/logloss. Writes config.yaml, metrics.json, weights/ "
                    "and tb/ (TensorBoard) into --out.")
    p.add_argument("--data", required=True,
                   help="Dataset directory written by `python -m data_tools "
                        "convert` or `synth` (has dataset.json).")
    p.add_argument("--model", required=True,
                   help="Model name: dnn, deepfm, dcnv2, gdcn, finalmlp, "
                        "autoint, xdeepfm.")
    p.add_argument("--preset", default="frappe",
                   help="Preset file in tfdsmlp/configs (frappe, criteo, "
                        "avazu, movielens, synthetic). Default: frappe.")
    p.add_argument("--out", required=True, help="Run directory to write.")
    p.add_argument("--quiet", action="store_true",
                   help="No per-epoch progress bars.")
    _add_config_flags(p)

    p = sub.add_parser(
        "run", help="Teacher -> distillation -> alignment -> evaluation.",
        description="The DS-MLP job. Trains the teacher (or loads "
                    "--teacher-checkpoint), distils it into the main MLP "
                    "(stage 1), fine-tunes main + parallel MLP with the "
                    "alignment loss (stage 2), and writes config.yaml, "
                    "metrics.json, per-phase weights and TensorBoard logs "
                    "into --out. Running it again resumes: finished phases "
                    "are loaded, an interrupted one continues from its last "
                    "epoch.")
    p.add_argument("--data", required=True,
                   help="Dataset directory (has dataset.json).")
    p.add_argument("--teacher", default="gdcn",
                   help="Teacher model: gdcn, dcnv2, finalmlp, autoint, "
                        "xdeepfm, deepfm, dnn. Default: gdcn.")
    p.add_argument("--preset", default="frappe",
                   help="Preset in tfdsmlp/configs: model and training "
                        "settings. Default: frappe.")
    p.add_argument("--out", required=True, help="Run directory.")
    p.add_argument("--strategy", default="auto",
                   choices=["auto", "default", "mirrored", "multiworker"],
                   help="tf.distribute strategy. auto: multiworker when "
                        "TF_CONFIG has several workers, mirrored with >1 "
                        "GPU, else one device. Default: auto.")
    p.add_argument("--teacher-checkpoint", metavar="PATH",
                   help="Load teacher weights (e.g. RUN/teacher/weights/"
                        "model) instead of training the teacher.")
    p.add_argument("--export-name", metavar="NAME",
                   help="Also export the DS-MLP to saved_models/NAME/<v>/.")
    p.add_argument("--quiet", action="store_true",
                   help="No per-epoch progress bars.")
    _add_config_flags(p)

    p = sub.add_parser(
        "report", help="Markdown table of finished runs.",
        description="Prints a Markdown table from metrics.json files: for a "
                    "`run` directory one row per phase, for a directory of "
                    "`train` runs one row per model.")
    p.add_argument("path", help="A run directory, or a directory holding "
                                "one `train` run per model.")

    p = sub.add_parser(
        "demo", help="End-to-end run on built-in synthetic data.",
        description="Generates a synthetic dataset with known feature "
                    "interactions and trains on it with small settings, "
                    "printing a results table. Needs no downloaded data.")
    p.add_argument("--out", default="demo_output",
                   help="Output directory (data and runs). Default: "
                        "demo_output.")
    p.add_argument("--rows", type=int, default=60000,
                   help="Synthetic training rows. Default: 60000.")
    p.add_argument("--seed", type=int, default=0,
                   help="Seed of data generation and training. Default: 0.")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from tfdsmlp.config import deep_merge, load_yaml, merge_overrides
    from tfdsmlp.training.presets import model_preset
    from tfdsmlp.training.teacher import teacher_config, train_teacher

    data = model_preset(args.preset, args.model)
    if args.config:
        data = deep_merge(data, load_yaml(args.config))
    data = merge_overrides(data, args.overrides)
    cfg = teacher_config(data)
    result = train_teacher(args.data, cfg, args.out,
                           verbose=0 if args.quiet else 1)
    print(f"{cfg.model}: test AUC {result['test']['auc']:.4f} logloss "
          f"{result['test']['logloss']:.4f} (valid AUC "
          f"{result['valid']['auc']:.4f}, {result['epochs']} epochs, "
          f"{result['train_seconds']} s) -> {args.out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tfdsmlp.features import FeatureSpec
    from tfdsmlp.training.pipeline import run_dsmlp
    from tfdsmlp.training.presets import build_run_config

    cfg = build_run_config(args.preset, args.teacher, args.config,
                           args.overrides)
    result = run_dsmlp(args.data, cfg, args.out, strategy=args.strategy,
                       teacher_checkpoint=args.teacher_checkpoint,
                       verbose=0 if args.quiet else 1)
    models = result.pop("_models")
    print(f"{'phase':<18}{'valid AUC':>10}{'test AUC':>10}{'logloss':>10}"
          f"{'params':>10}")
    for phase, m in result["phases"].items():
        print(f"{phase:<18}{m['valid']['auc']:>10.4f}{m['test']['auc']:>10.4f}"
              f"{m['test']['logloss']:>10.4f}{m['params']:>10}")
    if args.export_name:
        from tfdsmlp.export import export_saved_model

        path = export_saved_model(models["student"],
                                  FeatureSpec.from_dataset_dir(args.data),
                                  "saved_models", args.export_name)
        print(f"exported: {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tfdsmlp.report import report

    print(report(args.path))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tfdsmlp.demo import run_demo

    run_demo(args.out, rows=args.rows, seed=args.seed)
    return 0


COMMANDS = {"train": cmd_train, "run": cmd_run, "report": cmd_report,
            "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as e:
        print(f"tfdsmlp {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
