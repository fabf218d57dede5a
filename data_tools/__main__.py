"""Command line: `python -m data_tools {convert,inspect,synth,ceiling,build-native}`.

A thin argparse layer over `data_tools.convert.convert`,
`data_tools.inspect_dataset.inspect`, `data_tools.synth.write_synthetic`
(`--profile small`), `data_tools.synth_profile.write_profile` (`--profile
criteo|avazu`), `data_tools.ceiling.ceiling` and `data_tools.native.build`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import tfdsmlp  # noqa: F401  (sets TF_USE_LEGACY_KERAS before any TensorFlow)

from data_tools.engines import ENGINES
from data_tools.formats import CRITEO_NUMERIC_MODES, FORMATS

EPILOG = """examples:
  python -m data_tools convert --format criteo --train train.txt --split 8:1:1 \\
      --seed 0 --min-count 10 --out data/criteo
  python -m data_tools convert --format csv --label label \\
      --train frappe/train.csv --valid frappe/valid.csv --test frappe/test.csv \\
      --out data/frappe
  python -m data_tools inspect data/frappe --split valid --num 3
  python -m data_tools synth --out data/synth --rows 20000 --seed 0

Output layout and field semantics: docs/DATA_FORMAT.md."""


def _convert_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert raw CTR files into a dataset directory",
        description="Convert raw CTR data into DIR/dataset.json, "
        "DIR/vocab/<field>.txt and\nDIR/<split>/part-NNNNN.tfrecord[.gz] "
        "(tf.train.Example: ids int64, dense float,\nlabel float).\n\n"
        "Bad options or input (a label column listed as a feature, a column "
        "listed\ntwice, a split that would be empty or, for valid/test, have "
        "one label, too\nmany bad rows) stop it with exit status 2 and a "
        "message saying how to fix\nthem; a failed run leaves no output "
        "directory behind.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="criteo: Kaggle TSV (label, I1..I13, C1..C26, no "
                   "header); avazu: Kaggle CSV with header (id dropped, click "
                   "= label, hour -> hour_of_day + weekday); libfm: 'label "
                   "id:val ...' with one id per field; csv: CSV with header, "
                   "see --label/--categorical/--numeric")
    p.add_argument("--train", required=True, metavar="FILE",
                   help="training file; vocabularies come from its rows "
                   "only. Input files may be gzip (.gz) or bzip2 (.bz2) "
                   "compressed (found by their magic bytes): they are "
                   "decompressed into the temporary directory next to DIR "
                   "first, which needs that much free disk. A UTF-8 "
                   "byte-order mark at the start is ignored")
    p.add_argument("--valid", metavar="FILE",
                   help="validation file (like --train)")
    p.add_argument("--test", metavar="FILE", help="test file (like --train)")
    p.add_argument("--split", metavar="A:B[:C]",
                   help="instead of --valid/--test, split --train rows into "
                   "train:valid[:test] by these proportions (e.g. 8:1:1) with "
                   "a seeded hash of each row's position. Every split must "
                   "get at least 2 rows, and valid and test both labels "
                   "(AUC needs them), else the conversion fails")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of --split (default 0)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output dataset directory. It is written as "
                   "DIR's sibling .DIR.tmp-HOST-PID-XXXX and renamed at the "
                   "end; such temporaries left by interrupted runs whose "
                   "process is gone are removed")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it exists (only if it holds a "
                   "dataset.json or is empty)")
    p.add_argument("--fields", metavar="A,B,...",
                   help="libfm: names of the fields, in order (default "
                   "f0..fN-1, N from the first row)")
    p.add_argument("--label", metavar="COL",
                   help="csv: label column (values 0/1), required for csv; "
                   "it must not be listed in --categorical or --numeric")
    p.add_argument("--categorical", metavar="C1,C2,...",
                   help="csv: categorical columns in order (default: every "
                   "column except --label and --numeric ones); a column "
                   "may be listed once, here or in --numeric")
    p.add_argument("--numeric", metavar="N1,N2,...",
                   help="csv: numeric columns in order (float; empty -> 0.0)")
    p.add_argument("--criteo-numeric", choices=CRITEO_NUMERIC_MODES,
                   default="bucketize",
                   help="criteo I1..I13: 'bucketize' (default) makes them "
                   "categorical: v>2 -> floor(ln(v)^2), else v; 'log1p' keeps "
                   "them numeric as log1p(max(v,0)), empty -> 0")
    p.add_argument("--min-count", type=int, default=1,
                   help="tokens seen fewer times in training map to OOV "
                   "(id 1); default 1")
    p.add_argument("--shards", type=int, default=None,
                   help="files per split (default: one per 256 MiB of input,"
                   " at least 1)")
    p.add_argument("--compression", choices=["none", "GZIP"], default="none",
                   help="GZIP writes .tfrecord.gz files (default none)")
    p.add_argument("--max-reject-fraction", type=float, default=0.01,
                   help="fail if rejected/read rows of any split exceed this "
                   "(default 0.01); bad rows are listed in DIR/rejected.txt")
    p.add_argument("--workers", type=int, default=None,
                   help="worker threads (native) or processes (Python) "
                   "(default: number of usable CPUs)")
    p.add_argument("--engine", choices=ENGINES,
                   default="auto",
                   help="auto (default): the native C converter, built on "
                   "first use with the system C compiler, falling back to "
                   "the Python one (with a note why) for inputs it does not "
                   "handle (rejected rows, quoted CSV fields, GZIP output) "
                   "and if it fails; "
                   "native: fail instead of falling back; python: always "
                   "the Python converter. Both write identical files")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars on stderr")


def _other_parsers(sub) -> None:
    p = sub.add_parser(
        "inspect", help="print a dataset's schema and decoded examples",
        description="Print fields, kinds, vocab sizes and row counts of a "
        "dataset directory, and a few examples decoded back to raw tokens "
        "('' = missing, <OOV> = not in the vocabulary).")
    p.add_argument("dir", metavar="DIR", help="dataset directory")
    p.add_argument("--split", default="train",
                   help="split to show examples of (default train)")
    p.add_argument("--num", type=int, default=5,
                   help="examples to decode (default 5; 0 for schema only)")

    _synth_parser(sub)
    _ceiling_parser(sub)


def _ceiling_parser(sub) -> None:
    p = sub.add_parser(
        "ceiling", help="the planted optimum a converted synth dataset "
        "still allows",
        description="AUC and log loss of the planted teacher of `synth "
        "--profile criteo|avazu` on a split of a converted dataset, with "
        "every OOV cell (a token under --min-count, or unseen in training) "
        "averaged over the hidden parameters it could have: the best any "
        "model of these converted rows can reach with unlimited training "
        "rows, beside the recorded Bayes optimum of the raw rows. Prints "
        "JSON. See data_tools/ceiling.py.")
    p.add_argument("dir", metavar="DIR", help="converted dataset directory "
                   "(convert of the synth run's raw files, or synth "
                   "--output dataset)")
    p.add_argument("--truth", default=None,
                   help="planted.json of the synth run, or its directory "
                   "(default: DIR's own dataset.json, for synth --output "
                   "dataset)")
    p.add_argument("--split", default="test",
                   help="split to score (default test)")
    p.add_argument("--draws", type=int, default=16,
                   help="Monte-Carlo draws per row with OOV cells, an even "
                   "number (antithetic pairs; default 16; the output also "
                   "gives the AUC with half of them)")
    p.add_argument("--rows", type=int, default=None,
                   help="score only the split's first ROWS rows (default: "
                   "all); the Bayes figures are then computed on the same "
                   "rows from the true logits beside the truth")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the draws (default 0)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar on stderr")


def _synth_parser(sub) -> None:
    p = sub.add_parser(
        "synth", help="write a synthetic dataset with a known true logit",
        description="Write a synthetic dataset whose labels come from a "
        "known logit.\n\n--profile small (default): the small dataset "
        "of the demo, with pairwise,\n3rd-order and implicit interactions "
        "(same layout as convert).\n--profile criteo / avazu: raw files "
        "shaped like the Kaggle Criteo / Avazu data\n(columns, value "
        "distributions, vocabulary sizes, missing values), labelled by\n"
        "a planted random GDCN-style teacher; the Bayes-optimal AUC and "
        "logloss of\neach split are written with it. Streams in chunks: "
        "memory does not grow\nwith --rows. The truth is stored in "
        "dataset.json 'synthetic' (or planted.json).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python -m data_tools synth --out data/synth --rows 20000 --seed 0\n"
        "  python -m data_tools synth --profile criteo --rows 2000000 "
        "--out data/criteo_planted\n"
        "  python -m data_tools synth --profile avazu --rows 1000000 "
        "--output tsv --gzip \\\n      --out raw/avazu_planted\n\n"
        "Details: docs/DATA_FORMAT.md, 'Synthetic data'.")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory")
    p.add_argument("--profile", choices=["small", "criteo", "avazu"],
                   default="small",
                   help="small (default): the demo's data set; criteo / "
                   "avazu: Criteo / Avazu-shaped data with a planted "
                   "teacher")
    p.add_argument("--rows", type=int, default=20000,
                   help="training rows (default 20000)")
    p.add_argument("--valid-rows", type=int, default=None,
                   help="validation rows (default rows/10)")
    p.add_argument("--test-rows", type=int, default=None,
                   help="test rows (default rows/10)")
    p.add_argument("--seed", type=int, default=0,
                   help="generator seed (default 0)")
    p.add_argument("--num-categorical", type=int, default=None,
                   help="small: categorical fields, >= 6 (default 8)")
    p.add_argument("--num-numeric", type=int, default=None,
                   help="small: numeric fields (default 2)")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="small: tokens per categorical field (default 50)")
    p.add_argument("--output", choices=["dataset", "tsv"], default=None,
                   help="criteo/avazu: 'dataset' (default) converts the "
                   "generated raw files with `convert` (criteo: --format "
                   "criteo, avazu: --format avazu); 'tsv' keeps the raw "
                   "files instead: DIR/{train,valid,test}.txt (criteo TSV) "
                   "or .csv (avazu CSV with header), DIR/planted.json and "
                   "DIR/<split>_logit.npy")
    p.add_argument("--gzip", action="store_true",
                   help="--output tsv: write .gz raw files")
    p.add_argument("--compression", choices=["none", "GZIP"], default="none",
                   help="GZIP writes .tfrecord.gz files (default none)")
    p.add_argument("--workers", type=int, default=None,
                   help="criteo/avazu: generating processes, also given to "
                   "the converter (default: number of usable CPUs); the "
                   "output does not depend on it")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="criteo/avazu --output dataset: the converter's "
                   "--engine (default auto)")
    p.add_argument("--chunk-rows", type=int, default=None,
                   help="criteo/avazu: rows generated at once, a multiple "
                   "of 2048 (default 65536); the output does not depend "
                   "on it")
    p.add_argument("--cross-share", type=float, default=None,
                   help="criteo/avazu: the planted cross network's share of "
                   "the logit's variance, in [0, 1) (default 0.4; the "
                   "first-order and MLP parts share the rest equally): "
                   "how much of the signal only explicit crosses carry")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it exists")
    p.add_argument("--quiet", action="store_true",
                   help="criteo/avazu: no progress on stderr")


def _build_native_parser(sub) -> None:
    p = sub.add_parser(
        "build-native", help="compile the native converter (done on first "
        "use otherwise)",
        description="Compile data_tools/native/ctrconvert.c with the system C "
        "compiler ($CC, cc, gcc or clang) into $TFDSMLP_NATIVE_DIR (default "
        "~/.cache/tfdsmlp/native) and print the binary's path. `convert "
        "--engine auto` builds it on first use; `make venv` runs this.")
    p.add_argument("--force", action="store_true",
                   help="compile even if the binary for this source exists")
    p.add_argument("--quiet", action="store_true",
                   help="print nothing on success")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_tools",
        description="Build tfdsmlp dataset directories: convert raw CTR data,"
        " inspect a dataset, or write a synthetic one.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{convert,inspect,synth,ceiling,build-native}")
    _convert_parser(sub)
    _other_parsers(sub)
    _build_native_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from data_tools.outputs import ConvertError
    try:
        if args.command == "convert":
            from data_tools.convert import convert
            summary = convert(
                args.format, args.train, args.out, valid=args.valid,
                test=args.test, split=args.split, seed=args.seed,
                fields=args.fields, label=args.label,
                categorical=args.categorical, numeric=args.numeric,
                criteo_numeric=args.criteo_numeric, min_count=args.min_count,
                shards=args.shards,
                compression="" if args.compression == "none" else "GZIP",
                max_reject_fraction=args.max_reject_fraction,
                overwrite=args.overwrite, workers=args.workers,
                engine=args.engine, quiet=args.quiet)
            print(json.dumps(summary, indent=2))
        elif args.command == "build-native":
            from data_tools import native
            try:
                path = native.build(force=args.force)
            except native.BuildError as e:
                print(f"python -m data_tools build-native: error: {e}",
                      file=sys.stderr)
                return 1
            if not args.quiet:
                print(path)
        elif args.command == "inspect":
            from data_tools.inspect_dataset import inspect
            inspect(args.dir, split=args.split, num=args.num)
        elif args.command == "ceiling":
            from data_tools.ceiling import ceiling, load_truth
            truth = load_truth(args.truth or args.dir)
            print(json.dumps(ceiling(args.dir, truth, split=args.split,
                                     draws=args.draws, seed=args.seed,
                                     rows=args.rows, quiet=args.quiet), indent=2))
        else:
            print(json.dumps(_synth(args), indent=2))
    except (ConvertError, FileNotFoundError, ValueError) as e:
        print(f"python -m data_tools {args.command}: error: {e}",
              file=sys.stderr)
        return 2
    return 0


def _synth(args: argparse.Namespace) -> dict:
    compression = "" if args.compression == "none" else "GZIP"
    if args.profile == "small":
        wrong = [flag for flag, value in (
            ("--output", args.output), ("--gzip", args.gzip or None),
            ("--workers", args.workers), ("--chunk-rows", args.chunk_rows),
            ("--cross-share", args.cross_share))
            if value is not None]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} apply to --profile criteo "
                             f"or avazu, not small")
        from data_tools.synth import write_synthetic
        return write_synthetic(
            args.out, num_rows=args.rows, seed=args.seed,
            num_categorical=(8 if args.num_categorical is None
                             else args.num_categorical),
            num_numeric=2 if args.num_numeric is None else args.num_numeric,
            vocab_size=50 if args.vocab_size is None else args.vocab_size,
            valid_rows=args.valid_rows,
            test_rows=args.test_rows, overwrite=args.overwrite,
            compression=compression)
    wrong = [flag for flag, value in (
        ("--num-categorical", args.num_categorical),
        ("--num-numeric", args.num_numeric),
        ("--vocab-size", args.vocab_size)) if value is not None]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} apply to --profile small; "
                         f"--profile {args.profile} has a fixed schema")
    from data_tools.synth_profile import CHUNK_ROWS, write_profile
    return write_profile(
        args.out, args.profile, num_rows=args.rows, seed=args.seed,
        valid_rows=args.valid_rows, test_rows=args.test_rows,
        output=args.output or "dataset", gzip=args.gzip,
        compression=compression, overwrite=args.overwrite,
        chunk_rows=args.chunk_rows or CHUNK_ROWS, engine=args.engine,
        workers=args.workers, quiet=args.quiet,
        cross_share=args.cross_share)


if __name__ == "__main__":
    sys.exit(main())
