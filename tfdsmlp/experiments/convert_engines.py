"""python -m tfdsmlp.experiments.convert_engines --file F --out DIR [...]

Times the conversion engines on one raw Criteo TSV file, in one run
(docs/SCALE.md, section 2):

- `wc -l` on the file (the floor: reading it once);
- `data_tools convert --engine native` and `--engine python` (the whole
  conversion: vocabulary pass, id mapping, TFRecord writing), with their
  peak RSS (`ru_maxrss` of the process, from `os.wait4`);
- with `--pyarrow-python PY` (an interpreter that has pyarrow; pyarrow is
  not a dependency of this package), pyarrow's streaming CSV reader
  (`pyarrow.csv.open_csv`, all its threads) parsing the same file into
  Arrow batches and nothing more: a lower bound on any converter built on
  it, which would still have to count tokens, map them to ids and write
  the records.

The file is read once before the timings (page cache), and the commands
alternate over `--repeats` rounds; the best time of each counts. The load
average of every round is recorded: nothing else should run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tfdsmlp.experiments.runner import wait_peak_rss

# The pyarrow reader: every row parsed (40 tab-separated columns, none
# quoted) into Arrow batches, label and integers as int64, categorical
# columns as strings.
PYARROW_READ = r"""
import sys, time
import pyarrow as pa, pyarrow.csv as csv
names = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
types = {n: (pa.string() if n.startswith("C") else pa.int64()) for n in names}
start = time.perf_counter()
reader = csv.open_csv(sys.argv[1],
    read_options=csv.ReadOptions(column_names=names, block_size=1 << 24, use_threads=True),
    parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
    convert_options=csv.ConvertOptions(column_types=types))
rows = sum(batch.num_rows for batch in reader)
print(rows, time.perf_counter() - start, pa.__version__)
"""


def run_command(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB of this command alone, its stdout)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read()
        proc.stdout.close()
        rss = wait_peak_rss(proc)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(
                f"{' '.join(cmd[:6])} ... failed (exit {proc.returncode}): "
                f"{err.read().decode(errors='replace')[-2000:]}")
    return seconds, rss, out.decode()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tfdsmlp.experiments.convert_engines",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", required=True,
                   help="Raw Criteo TSV file (label, I1-I13, C1-C26).")
    p.add_argument("--out", required=True,
                   help="Scratch directory for the converted datasets "
                        "(removed after each conversion) and "
                        "convert_engines.json.")
    p.add_argument("--engines", default="native,python",
                   help="Comma-separated data_tools engines to time. "
                        "Default: %(default)s.")
    p.add_argument("--pyarrow-python", metavar="PY",
                   help="Python interpreter with pyarrow installed, to time "
                        "pyarrow's CSV reader on the file. Default: not "
                        "timed.")
    p.add_argument("--min-count", type=int, default=10,
                   help="convert --min-count. Default: %(default)s.")
    p.add_argument("--repeats", type=int, default=1,
                   help="Rounds; the best time of each command counts. "
                        "Default: %(default)s.")
    args = p.parse_args(argv)
    if not os.path.isfile(args.file):
        p.error(f"--file {args.file} does not exist")
    engines = [e for e in args.engines.split(",") if e]
    bad = [e for e in engines if e not in ("native", "python")]
    if bad:
        p.error(f"--engines: {bad} are not data_tools engines (native, "
                "python)")
    os.makedirs(args.out, exist_ok=True)
    commands = {"wc -l": ["wc", "-l", args.file]}
    for engine in engines:
        commands[f"convert --engine {engine}"] = [
            sys.executable, "-m", "data_tools", "convert", "--format",
            "criteo", "--train", args.file, "--split", "8:1:1", "--seed",
            "0", "--min-count", str(args.min_count), "--engine", engine,
            "--out", os.path.join(args.out, "converted"), "--quiet"]
    if args.pyarrow_python:
        commands["pyarrow.csv read only"] = [args.pyarrow_python, "-c",
                                             PYARROW_READ, args.file]
    run_command(["wc", "-l", args.file])  # the file into the page cache
    best: dict[str, dict] = {}
    rounds = []
    for r in range(args.repeats):
        for name, cmd in commands.items():
            shutil.rmtree(os.path.join(args.out, "converted"),
                          ignore_errors=True)
            print(f"[convert_engines] round {r + 1}/{args.repeats}: {name}",
                  flush=True)
            seconds, rss, out = run_command(cmd)
            entry = {"seconds": round(seconds, 3), "peak_rss_mib": round(rss),
                     "load_average": os.getloadavg()}
            if name.startswith("convert"):
                summary = json.loads(out)
                entry["engine"] = summary["engine"]
                entry["rows"] = sum(summary["rows_read"].values())
            elif name.startswith("pyarrow"):
                rows, inner, version = out.split()
                entry.update(rows=int(rows), inner_seconds=float(inner),
                             pyarrow=version)
            else:
                entry["rows"] = int(out.split()[0])
            rounds.append({"round": r + 1, "command": name, **entry})
            if name not in best or seconds < best[name]["seconds"]:
                best[name] = entry
    shutil.rmtree(os.path.join(args.out, "converted"), ignore_errors=True)
    wc = best["wc -l"]["seconds"]
    result = {"file": args.file, "bytes": os.path.getsize(args.file),
              "best": best, "rounds": rounds}
    with open(os.path.join(args.out, "convert_engines.json"), "w",
              encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print("| command | rows | seconds (best) | rows/s | x wc -l | "
          "peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for name, e in best.items():
        print(f"| {name} | {e['rows']:,} | {e['seconds']:.1f} | "
              f"{e['rows'] / e['seconds']:,.0f} | {e['seconds'] / wc:.1f} | "
              f"{e['peak_rss_mib']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
