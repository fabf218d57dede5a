"""The argparse parser of `python -m tfdsmlp`: every command and flag, with
the help text `--help` prints (the commands themselves are in `cli.py`).
"""

from __future__ import annotations

import argparse

from tfdsmlp.run_dir import EXPORT_PHASES, PHASES


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.yaml",
                   help="YAML file overriding the preset (unknown keys are "
                        "errors).")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="Override one config value (repeatable; YAML "
                        "syntax for the value). `train`: e.g. --set "
                        "train.learning_rate=0.0005 --set "
                        "params.dropout=0.3. `run`: e.g. --set "
                        "distill.kd_weight=0.5 --set align.alpha=0.8 --set "
                        "student.params.main_hidden_units=[400,400,400].")


def _add_fault_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-corrupt", action="store_true",
                   help="Skip unreadable records of truncated/corrupted "
                        "TFRecord files (the count is logged and written to "
                        "metrics.json as skipped_records) instead of "
                        "failing with an error naming the file.")
    p.add_argument("--deterministic", action="store_true",
                   help="TensorFlow op determinism: reruns, and runs resumed "
                        "after an interruption, give identical results "
                        "(somewhat slower).")


# `--progress` of train / run, and the `verbose` each gives the runner.
PROGRESS_MODES = {"bar": 1, "lines": 2, "none": 0}


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by `train` and `run`."""
    p.add_argument("--preset", default=None,
                   help="Model and training settings for one dataset: a "
                        "preset name in tfdsmlp/configs (frappe, criteo, "
                        "avazu, movielens, synthetic) or a preset file such "
                        "as STUDY/best.yaml written by `tune`. Default: "
                        "none: every model's own defaults, which name no "
                        "dataset's fields.")
    p.add_argument("--out", required=True,
                   help="Run directory to write (or to resume: finished "
                        "phases with unchanged settings are reused).")
    p.add_argument("--restart-from", choices=PHASES, metavar="PHASE",
                   help="Train again from this phase (teacher, distill or "
                        "align): removes it and the phases after it from "
                        "--out first. Needed when --out holds phases made "
                        "with other settings.")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", choices=PROGRESS_MODES, default=None,
        help="What each epoch prints. bar: Keras' progress bar with its "
             "ETA, rewritten in place (for a terminal); lines: a line "
             "every 30 s with the epoch's rows done, examples/s and ETA, "
             "and one per finished epoch with its metrics (for log files: "
             "nohup, the experiments runner); none: nothing (as --quiet). "
             "Default: bar on a terminal, lines otherwise.")
    shown.add_argument("--quiet", action="store_true",
                       help="No per-epoch progress (--progress none).")
    _add_fault_flags(p)
    _add_config_flags(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfdsmlp",
        description="DS-MLP for CTR prediction: train teachers and "
                    "baselines, run the demo.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_run(sub)
    _add_report(sub)
    _add_bench(sub)
    _add_export(sub)
    _add_serve_check(sub)
    _add_predict(sub)
    _add_tune(sub)
    _add_serve_cluster_task(sub)
    _add_explain(sub)
    _add_demo(sub)
    return parser


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="Train one model (teacher or baseline).",
        description="The teacher phase of `run` alone: trains one CTR "
                    "model with FuxiCTR's schedule (exact validation AUC "
                    "every epoch, lr x0.1 on plateau, early stop, best "
                    "weights restored) and reports exact test AUC/logloss. "
                    "Writes the same run directory as `run` (config.yaml, "
                    "metrics.json, teacher/weights, tb/), so `export "
                    "--phase teacher`, `report` and `run "
                    "--teacher-checkpoint RUN` work on it; `run --out` the "
                    "same directory continues it with the DS-MLP phases.")
    p.add_argument("--data", required=True,
                   help="Dataset directory written by `python -m data_tools "
                        "convert` or `synth` (has dataset.json).")
    p.add_argument("--model", required=True,
                   help="Model name: dnn, deepfm, dcnv2, gdcn, finalmlp, "
                        "autoint, xdeepfm.")
    _add_run_flags(p)


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run", help="Teacher -> distillation -> alignment -> evaluation.",
        description="The DS-MLP job. Trains the teacher (or loads "
                    "--teacher-checkpoint), distils it into the main MLP "
                    "(stage 1), fine-tunes main + parallel MLP with the "
                    "alignment loss (stage 2), and writes config.yaml, "
                    "metrics.json, per-phase weights and TensorBoard logs "
                    "into --out. Running it again resumes: finished phases "
                    "whose settings and data are unchanged are loaded, an "
                    "interrupted one continues from its last epoch; a "
                    "phase made with other settings stops the command "
                    "before any work (see --restart-from).")
    p.add_argument("--data", required=True,
                   help="Dataset directory (has dataset.json).")
    p.add_argument("--teacher", default="gdcn",
                   help="Teacher model: gdcn, dcnv2, finalmlp, autoint, "
                        "xdeepfm, deepfm, dnn. Default: gdcn.")
    p.add_argument("--strategy", default="auto",
                   choices=["auto", "default", "mirrored", "multiworker",
                            "parameter_server"],
                   help="tf.distribute strategy. auto: parameter_server "
                        "when TF_CONFIG's cluster has ps tasks, multiworker "
                        "when it has several workers, mirrored with >1 GPU, "
                        "else one device. parameter_server: this process "
                        "is the cluster's chief (coordinator); workers and "
                        "parameter servers run `serve-cluster-task`. "
                        "Default: auto. Multi-host setup: docs/SCALING.md.")
    p.add_argument("--min-shard-rows", type=int, metavar="N",
                   help="parameter_server: split every variable of at least "
                        "N rows (the embedding tables) by rows over the "
                        "parameter servers; smaller ones (MLP, cross "
                        "weights) stay whole. Default: 65536 "
                        "(tfdsmlp.training.parameter_server.MIN_SHARD_ROWS).")
    p.add_argument("--teacher-checkpoint", metavar="PATH",
                   help="Load the teacher instead of training it: a run "
                        "directory of `train` or `run` (its teacher must "
                        "have the same model, settings and data), or a "
                        "weights prefix (the weights must fit the teacher "
                        "exactly); RUN/teacher/weights/model counts as RUN "
                        "itself, so either form resumes a run made with "
                        "the other. A teacher study (`tune --out STUDY`) "
                        "stands for its best trial's run, STUDY/trials/<n> "
                        "(printed).")
    p.add_argument("--export-name", metavar="NAME",
                   help="Also export the DS-MLP selected by validation AUC "
                        "(after alignment, after distillation, or one "
                        "stream of it alone) to "
                        "saved_models/NAME/<v>/ and the teacher to "
                        "saved_models/NAME_teacher/<v>/ (see `export`). "
                        "NAME is checked before any training.")
    _add_run_flags(p)


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="Markdown table of finished runs.",
        description="Prints a Markdown table from metrics.json files: for a "
                    "`run` directory one row per phase and the model "
                    "selected for export; for a directory of "
                    "`train` or `run` runs one row per run (the model it "
                    "selected by validation AUC), then the mean and "
                    "standard deviation of each group of runs whose "
                    "config.yaml differ only in their seeds, and, for "
                    "groups that differ in one to three settings (an "
                    "ablation: distill.kd_weight 1 against 0), the "
                    "paired differences of their runs on equal seeds.")
    p.add_argument("path", help="A run directory, or a directory holding "
                                "`train` or `run` runs (e.g. one per "
                                "model, or one per seed).")
    p.add_argument("--phase", choices=[p for p in EXPORT_PHASES
                                       if p != "best"],
                   help="For a directory of runs: compare this phase's "
                        "model of every run (e.g. `student`, the stage-1 "
                        "student, for a KD ablation) instead of the model "
                        "each run selected for export; runs without it are "
                        "named below the tables.")
    p.add_argument("--epochs", action="store_true",
                   help="For one run directory: a row per epoch of each "
                        "trained phase (exact validation AUC and log loss, "
                        "learning rate, the epoch the schedule kept), "
                        "also for a run that is still training.")
    p.add_argument("--sweep", metavar="KEY",
                   help="For a directory of runs: one setting swept over "
                        "seeds (a dotted config.yaml key, e.g. "
                        "distill.kd_weight for the paper's Figure 5): a "
                        "row per value with the mean ± standard deviation "
                        "of validation AUC, test AUC and test log loss, "
                        "and the value with the best validation AUC, "
                        "beside the teacher the runs distilled from. "
                        "Runs that differ in other settings too are named "
                        "and left out.")
    p.add_argument("--plot", metavar="FILE",
                   help="With --sweep: also write a PNG of validation and "
                        "test AUC against the swept value, the teacher's "
                        "as a dashed line.")


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench", help="Speed figures measured side by side in one run.",
        description="Training throughput of each teacher and DS-MLP phase "
                    "(cached batches, from TFRecords and from memory), "
                    "tf.data input throughput, inference "
                    "latency/throughput of each model "
                    "in process and of exported SavedModels, and "
                    "data_tools conversion speed against `wc -l`. Prints "
                    "Markdown tables and writes --json.")
    p.add_argument("--data", help="Dataset directory (required unless "
                   "--convert-only).")
    p.add_argument("--preset", default="frappe",
                   help="Preset giving each model's size. Default: frappe.")
    p.add_argument("--teachers", default="gdcn,dcnv2,finalmlp",
                   help="Comma-separated teachers to measure. Default: "
                        "gdcn,dcnv2,finalmlp.")
    p.add_argument("--batch-size", type=int, default=4096,
                   help="Training and large inference batch. Default: 4096.")
    p.add_argument("--steps", type=int, default=20,
                   help="Timed training steps per pass on cached batches "
                        "(the TFRecord and in-memory streams are timed over "
                        "whole epochs of the training split). Default: 20.")
    p.add_argument("--steps-per-execution", type=int, metavar="N",
                   help="Training steps per call of the compiled train "
                        "function. Default: the preset's "
                        "train.steps_per_execution (1 when it has none).")
    p.add_argument("--repeats", type=int, default=300,
                   help="Timed batch-1 inference calls. Default: 300.")
    p.add_argument("--saved-model", action="append", default=[],
                   metavar="NAME=PATH",
                   help="Also time an exported SavedModel version directory "
                        "(predict_indexed signature). Repeatable.")
    p.add_argument("--criteo-file", metavar="FILE",
                   help="Raw Criteo TSV to replicate for the conversion "
                        "benchmark (e.g. ../shared/data/criteo_sample/"
                        "train.txt); skipped when absent.")
    p.add_argument("--convert-rows", type=int, default=1_000_000,
                   help="Rows of the replicated file. Default: 1000000.")
    p.add_argument("--sparse-rows", type=int, default=0, metavar="N",
                   help="Also time Adam vs LazyAdam (and whole-table, "
                        "batch-scope and lazy embedding L2) and CatchUpAdam "
                        "on a DNN whose tables hold N rows in all, e.g. "
                        "2000000. Default: 0 (skipped).")
    p.add_argument("--json", metavar="FILE", help="Write all figures here.")
    p.add_argument("--infer-only", action="store_true",
                   help="Only time the --saved-model exports (no training, "
                        "input or conversion figures).")
    p.add_argument("--convert-only", action="store_true",
                   help="Only time the conversion of --criteo-file against "
                        "`wc -l` (no dataset needed).")
    p.add_argument("--peer", choices=["fuxictr"],
                   help="Instead of the figures above: time tfdsmlp and the "
                        "PyTorch reference library on the same batches and "
                        "settings in interleaved rounds, each measurement "
                        "in a fresh process, and print per-round figures "
                        "with the load average and the median ratios. "
                        "Needs the peer environment (`make peer`).")
    p.add_argument("--peer-python", default=".venv-peer/bin/python",
                   metavar="PATH",
                   help="Python of the peer environment. Default: "
                        ".venv-peer/bin/python (made by `make peer`).")
    p.add_argument("--peer-models", default="dnn,gdcn,dcnv2,finalmlp,dsmlp",
                   help="--peer: comma-separated models (dnn, deepfm, "
                        "dcnv2, gdcn, finalmlp, xdeepfm, dsmlp). Default: "
                        "dnn,gdcn,dcnv2,finalmlp,dsmlp.")
    p.add_argument("--rounds", type=int, default=3,
                   help="--peer: interleaved rounds. Default: 3.")
    p.add_argument("--jit-compile", action="store_true",
                   help="--peer: XLA-compile tfdsmlp's train step and "
                        "inference function.")
    p.add_argument("--precision", default="float32",
                   choices=["float32", "mixed_bfloat16"],
                   help="--peer: tfdsmlp's train.precision, and its C++-"
                        "path exports' `export --precision` (the peer "
                        "computes in float32). Default: float32.")
    p.add_argument("--no-cpp", action="store_true",
                   help="--peer: skip exporting each model and timing it "
                        "in the C++ serving path (which needs a C "
                        "compiler).")
    p.add_argument("--cpp-serving", action="append", default=[],
                   metavar="NAME=PATH",
                   help="Time an exported SavedModel version directory in "
                        "the C++ serving path (TensorFlow's C API, no "
                        "Python): predict_indexed, serving_default and "
                        "preprocess (the vocabulary lookup alone) at batch "
                        "1 and --batch-size. Repeatable; needs --data and a "
                        "C compiler.")


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export", help="Export a run's model as a TF Serving SavedModel.",
        description="Writes BASE/NAME/<version>/ (integer versions, the "
                    "layout TF Serving watches) with the signatures "
                    "serving_default (raw values, vocabulary lookup built "
                    "in), predict_indexed, predict_examples, classify, "
                    "regress, preprocess, and TF Serving warm-up requests. "
                    "See docs/SERVING.md.")
    p.add_argument("--run", required=True,
                   help="Run directory of `python -m tfdsmlp run`.")
    p.add_argument("--name", required=True,
                   help="Model name (TF Serving --model_name).")
    p.add_argument("--version", type=int,
                   help="Version number. Default: 1 + the largest existing.")
    p.add_argument("--phase", default="best", choices=list(EXPORT_PHASES),
                   help="best: the model the run selected by validation AUC "
                        "(metrics.json `selected`: the DS-MLP after "
                        "alignment or after distillation, or one stream of "
                        "it alone; the teacher of a `train` run); dsmlp: "
                        "after alignment; student: after distillation (its "
                        "main stream alone when stage 1 trained only the "
                        "main MLP); dsmlp_main / dsmlp_parallel: one stream "
                        "of the aligned DS-MLP alone, as a one-stream "
                        "DS-MLP; teacher. Default: best.")
    p.add_argument("--base-dir", default="saved_models",
                   help="Model base directory. Default: saved_models.")
    p.add_argument("--data", help="Dataset directory. Default: the run's "
                                  "config.yaml `data:`.")
    p.add_argument("--jit-compile", action="store_true",
                   help="XLA-compile the model inside the signatures: lower "
                        "CPU latency (docs/BENCHMARKS.md, Serving). TF "
                        "Serving on CPU then needs "
                        "--xla_cpu_compilation_enabled=true.")
    p.add_argument("--precision", default="float32",
                   choices=["float32", "mixed_bfloat16"],
                   help="mixed_bfloat16: the model's matmuls and "
                        "activations run in bfloat16 (the float32 weights "
                        "cast at each call; probability and logit stay "
                        "float32): faster batch serving on CPUs with "
                        "AVX-512 BF16 or AMX, and on GPUs, for a small "
                        "change in the predictions; `serve-check` reports "
                        "the AUC of both precisions on its rows "
                        "(docs/BENCHMARKS.md, Serving in bfloat16). "
                        "Default: float32.")


def _add_serve_check(sub) -> None:
    p = sub.add_parser(
        "serve-check", help="Verify an exported SavedModel version.",
        description="Loads the SavedModel in a fresh TensorFlow-only process "
                    "as TF Serving does (tags serve), runs every signature "
                    "on the split's raw rows, checks the outputs equal the "
                    "in-process model's (rebuilt from the run, in the "
                    "export's precision), scores the rows (AUC, logloss; "
                    "for a bfloat16 export also the float32 model's) and "
                    "reports batch-1 p50/p99 latency and large-batch "
                    "throughput. Exit status 1 when a check fails.")
    p.add_argument("path", help="Version directory, e.g. "
                                "saved_models/NAME/1.")
    p.add_argument("--data", required=True, help="Dataset directory.")
    p.add_argument("--split", default="test", help="Default: test.")
    p.add_argument("--rows", type=int, default=10000,
                   help="Rows to check (0 = all). Default: 10000.")
    p.add_argument("--run", help="Run directory (default: recorded at "
                                 "export).")
    p.add_argument("--phase", choices=[p for p in EXPORT_PHASES
                                       if p != "best"],
                   help="Phase (default: recorded at export).")
    p.add_argument("--iters", type=int, default=300,
                   help="Timed batch-1 calls per signature. Default: 300.")
    p.add_argument("--batch", type=int, default=4096,
                   help="Throughput batch size. Default: 4096.")
    p.add_argument("--json", metavar="FILE", help="Also write the report.")


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="Score a CSV or TFRecord file with an export.",
        description="Scores every row of --input with an exported "
                    "SavedModel version, in batches (the file is streamed: "
                    "memory does not grow with its size), and writes one "
                    "`probability,logit` line per input row, in order, to "
                    "--output (a CSV file with that header, written under "
                    "its name only when complete). Progress (rows, rows/s, "
                    "ETA) goes to stderr. See docs/SERVING.md.")
    p.add_argument("path", help="Version directory written by `export`, "
                                "e.g. saved_models/NAME/1.")
    p.add_argument("--input", "-i", required=True, metavar="FILE",
                   help="csv: a header line naming the columns, then one "
                        "row per example with the raw values; it needs the "
                        "model's raw source columns (the serving_default "
                        "inputs, listed under raw_inputs in "
                        "assets.extra/tfdsmlp_export.json), other columns "
                        "are ignored; an empty numeric cell is 0. "
                        "tfrecord: tf.Example records with the raw named "
                        "features (the predict_examples signature). A .gz "
                        "suffix means GZIP; - reads CSV from stdin.")
    p.add_argument("--output", "-o", required=True, metavar="OUT.csv",
                   help="CSV file to write: probability,logit per input "
                        "row.")
    p.add_argument("--format", choices=["csv", "tfrecord"],
                   help="Input format. Default: tfrecord for the suffixes "
                        ".tfrecord, .tfrecords, .tfrec (+ .gz), else csv.")
    p.add_argument("--batch-size", type=int, default=4096, metavar="N",
                   help="Rows per SavedModel call; memory grows with it. "
                        "Default: 4096.")
    p.add_argument("--delimiter", default=",", metavar="CHAR",
                   help="CSV separator, one character ('tab' or '\\t' for "
                        "a tab). Default: ','.")
    p.add_argument("--quiet", action="store_true",
                   help="No progress on stderr.")


def _add_tune(sub) -> None:
    p = sub.add_parser(
        "tune", help="Search a teacher's or the DS-MLP's hyperparameters "
                     "(Optuna).",
        description="Searches a teacher model's settings by validation "
                    "AUC (TPE sampler, early pruning; the space per model "
                    "is in docs/TUNING.md). Each trial is an ordinary "
                    "teacher phase in STUDY/trials/<n> (as `train`); with "
                    "--model dsmlp --teacher, a whole `run` on that "
                    "teacher (distillation, alignment and student "
                    "settings). The test split is never read. The study lives in "
                    "STUDY/study.db (SQLite): rerunning the command after "
                    "any interruption, kill -9 included, resumes it (an "
                    "interrupted trial continues from its last epoch), and "
                    "several processes may run it at once. Writes "
                    "STUDY/best.yaml (a preset: `train --preset "
                    "STUDY/best.yaml`), STUDY/best_teacher.yaml (the best "
                    "teacher alone, a `run --config` file that keeps the "
                    "base preset's student), STUDY/trials.md and TensorBoard "
                    "HParams logs in STUDY/tb/.")
    p.add_argument("--data", required=True,
                   help="Dataset directory (has dataset.json). Trials "
                        "train on its train split and are scored on valid.")
    p.add_argument("--model", required=True,
                   help="Teacher model: gdcn, dcnv2, finalmlp, autoint, "
                        "xdeepfm, deepfm, dnn; or dsmlp (with --teacher): "
                        "the DS-MLP's distillation, alignment and student "
                        "settings.")
    p.add_argument("--teacher", default=None, metavar="RUN_DIR|STUDY",
                   help="With --model dsmlp (required there): a finished "
                        "teacher run (`train --out RUN_DIR`) that every "
                        "trial loads, or a teacher study (`tune --out "
                        "STUDY`), which stands for its best trial's run "
                        "(named in the log); trials are whole `run`s scored by "
                        "the selected model's validation AUC, and --set "
                        "takes `run`'s keys (distill.train.epochs=5).")
    p.add_argument("--trials", type=int, default=20, metavar="N",
                   help="Stop when the study holds N finished (complete "
                        "or pruned) trials, counting earlier runs. "
                        "Default: 20.")
    p.add_argument("--time-budget", type=float, metavar="S",
                   help="Start no new trial after S seconds (the running "
                        "one finishes). Default: none.")
    p.add_argument("--preset", default=None, metavar="NAME|FILE",
                   help="Base settings under the search: a preset name "
                        "(frappe, criteo, avazu, movielens, synthetic) or a "
                        "preset YAML file. Default: each model's defaults.")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="Fix one setting for every trial, as for `train` "
                        "(repeatable; YAML value), e.g. --set "
                        "train.epochs=20; a searched key given here is not "
                        "searched (--set params.hidden_units=[400,400] "
                        "fixes width and depth).")
    p.add_argument("--space", default=None, metavar="FILE",
                   help="A YAML file of ranges that replace the default "
                        "space's (docs/TUNING.md, 'Changing the space'), "
                        "e.g. `embedding_l2: [0.01, 0.1, 1.0]` or "
                        "`learning_rate: {log_uniform: [3.0e-4, 3.0e-3]}`; "
                        "settings it does not name keep their defaults. "
                        "The study warns when its best trial sits on the "
                        "edge of a range. Default: the default space.")
    p.add_argument("--search", default=None, metavar="NAME[,NAME...]",
                   help="Search only these settings of the space (names "
                        "from docs/TUNING.md's tables, e.g. embedding_l2 "
                        "or learning_rate,embedding_l2; mlp_width with "
                        "mlp_depth); every other setting keeps its base "
                        "value (--preset <- --set). For a short study at "
                        "full size over what a study on a sample of the "
                        "rows does not settle (docs/TUNING.md, 'At Criteo "
                        "scale'). Default: every setting of the space.")
    p.add_argument("--warm-start", default=None, metavar="STUDY",
                   help="Start a new study from the finished trials of an "
                        "earlier one (same model, preset, --set, data and "
                        "teacher; its space, seed and pruner may differ), "
                        "e.g. after widening a range with --space: they "
                        "are copied as history (TPE and the pruner use "
                        "them; they count towards --trials; a trial "
                        "outside the new space is left out, and named). "
                        "Default: none.")
    p.add_argument("--no-base-trial", dest="base_trial",
                   action="store_false",
                   help="Let the sampler draw a new study's first trial. "
                        "Default: the first trial takes the base settings "
                        "(--preset <- --set) of every searched setting "
                        "whose base lies in its range (the log names the "
                        "others, which it draws), so the study's best is "
                        "never below the base on validation.")
    p.add_argument("--out", required=True, metavar="STUDY",
                   help="Study directory to write, or to resume or extend "
                        "(with the same model, preset, --set, data, seed, "
                        "space and pruner).")
    p.add_argument("--seed", type=int, default=0,
                   help="Sampler seed: trial n draws from (seed, n). The "
                        "training seed is train.seed. Default: 0.")
    p.add_argument("--pruner", default="stalled",
                   choices=["stalled", "median", "hyperband", "none"],
                   help="stalled: stop a trial after an epoch that did not "
                        "raise its best validation AUC when that best is "
                        "below the median of finished trials' at the same "
                        "epoch (after 3 finished trials), so a trial still "
                        "improving runs on; median: the same test after "
                        "every epoch, epoch 1 included (cuts slow starters "
                        "such as strongly regularised trials, and most "
                        "DS-MLP trials: docs/TUNING.md); hyperband: Hyperband over epochs; "
                        "none. Default: stalled.")
    p.add_argument("--deterministic", action="store_true",
                   help="TensorFlow op determinism in every trial.")
    p.add_argument("--quiet", action="store_true",
                   help="No progress lines (per epoch and per trial).")


def _add_serve_cluster_task(sub) -> None:
    sub.add_parser(
        "serve-cluster-task",
        help="Serve this host's worker or ps task of a parameter-server "
             "cluster.",
        description="Starts the TensorFlow server of the `worker` or `ps` "
                    "task that TF_CONFIG names and serves until killed. "
                    "The cluster's `chief` runs the job with `python -m "
                    "tfdsmlp run --strategy parameter_server`; "
                    "docs/SCALING.md, section 3.")


def _add_explain(sub) -> None:
    p = sub.add_parser(
        "explain", help="Every model and stream of a run, per example.",
        description="The paper's case study (section 4.3.4): scores a "
                    "split with the run's teacher, the stage-1 student, "
                    "the stage-2 DS-MLP and each DS-MLP stream, finds the "
                    "rows where the teacher is confidently wrong, and "
                    "prints how the student and the streams did on them. "
                    "Writes OUT/explain.json (summary), OUT/explain.csv "
                    "(the shown rows, every column) and OUT/explain.png "
                    "(one line per model over the shown rows).")
    p.add_argument("run", help="Run directory of `python -m tfdsmlp run` "
                               "(distillation finished at least).")
    p.add_argument("--out", required=True, help="Directory to write.")
    p.add_argument("--split", default="test",
                   help="Split to score (train, valid, test). Default: "
                        "test.")
    p.add_argument("--count", type=int, default=20,
                   help="Rows in the table and plot: the teacher's most "
                        "confident mistakes, half of each label where "
                        "there are enough. Default: 20.")
    p.add_argument("--confidence", type=float, default=0.9,
                   help="A row is a confident mistake when |label - "
                        "teacher p| >= this (in [0.5, 1); 0.5: every row on "
                        "the wrong side). Default: 0.9.")
    p.add_argument("--rows", type=int, default=0,
                   help="Score only the first N rows of the split. "
                        "Default: 0 (all).")
    p.add_argument("--batch-size", type=int, default=4096,
                   help="Scoring batch. Default: 4096.")
    p.add_argument("--data", help="Dataset directory. Default: the run's "
                                  "config.yaml `data:`.")
    p.add_argument("--truth", metavar="PATH",
                   help="Synthetic data only: the planted truth, added as "
                        "the column `truth` (p* of each row) to tell the "
                        "teacher's own mistakes from label noise. A "
                        "planted.json of `data_tools synth --output tsv` "
                        "(its <split>_logit.npy beside it), a dataset "
                        "directory of `synth --output dataset`, or a .npy "
                        "of the split's true logits in row order.")


def _add_demo(sub) -> None:
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
