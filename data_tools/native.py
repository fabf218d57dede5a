"""The native (C) converter: build it, describe a job to it, run it.

`convert(..., engine="auto")` runs `native/ctrconvert.c` when it can: the
same two passes and the same output files as the Python converter, byte for
byte, in threads instead of processes and without Python per row (see the
comment at the top of the C file). The program is compiled once with the
system C compiler (`cc`, or `$CC`) into a cache directory
(`$TFDSMLP_NATIVE_DIR`, default `~/.cache/tfdsmlp/native`), under a name
that hashes the source, so an edited source is rebuilt. `make venv` builds
it; `python -m data_tools build-native` does it by hand.

Inputs the C code does not handle exactly like the Python converter (rows
the Python converter rejects, quoted CSV fields, numbers or labels outside
a strict grammar, GZIP output, unknown transforms) raise `Unsupported` with
the reason; `convert` then runs the Python converter instead. Compressed
inputs reach it decompressed (data_tools/inputs.py); a UTF-8 byte-order
mark is skipped as the Python converter skips it (row offsets count from
its end).

Job file: one "key value..." per line, read by `read_job` in the C file::

    threads 2 / min_count 1 / quiet 0 / [cache_mb N] / [piece_bytes N]
    [varint_words 0|1]
    sep 9 (byte; -1 = runs of whitespace) / num_columns 40 / label_column 0
    has_header 0 / quoted_csv 0 / libfm_labels 0
    field <column> <c|n> <transform>          one per output field
    splits <hash_split 0|1> <num_splits> / cum <cumulative fractions>
    seed_key <uint64>
    file <split index or -1> <BOM bytes> <path>   one per input file
    chunks <n> / chunk <file> <start> <end> <shard of split 0> <1> <2>
    shards <split> <n> / shard <split> <k> <path>
    vocab <categorical field index> <path>
    max_ids_len <n> / head <hex> (n + 1 lines) / dense_prefix <hex>
    label0 <hex> / label1 <hex>
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import zlib

import tqdm

from data_tools import formats

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native",
                      "ctrconvert.c")
CFLAGS = ("-O2", "-std=gnu11", "-pthread")
EXIT_UNSUPPORTED = 3

_TRANSFORMS = {None: "none", formats.log_square_bucket: "log_square_bucket",
               formats.log1p_number: "log1p",
               formats.plain_number: "plain_number",
               formats.hour_of_day: "hour_of_day",
               formats.weekday: "weekday",
               formats.libfm_token: "libfm_token"}


# Tuning knobs (environment variable -> job key), mainly for tests: the
# budget of the pass-1 row cache in MiB (default a quarter of the RAM; 0
# parses every row twice), the size of the pieces threads take (default
# 8 MiB) and whether pass 2 reads ids as ready-made varints (default 1; 0
# encodes each one, as for vocabularies of 2^21 tokens or more).
# CTRCONVERT_TIMES=1 makes the program print the seconds of each phase on
# stderr.
TUNING = {"cache_mb": "TFDSMLP_NATIVE_CACHE_MB",
          "piece_bytes": "TFDSMLP_NATIVE_PIECE_BYTES",
          "varint_words": "TFDSMLP_NATIVE_VARINT_WORDS"}


class Unsupported(Exception):
    """The native converter cannot convert this input exactly; use Python."""


class NativeError(RuntimeError):
    """The converter program failed (crash, I/O error): its exit status and
    message."""


class BuildError(Exception):
    """The C compiler is missing or failed."""


def cache_dir() -> str:
    env = os.environ.get("TFDSMLP_NATIVE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfdsmlp", "native")


def _compiler() -> str | None:
    import shutil
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc)
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def binary_path() -> str:
    """Where the binary for the current source and flags lives."""
    with open(SOURCE, "rb") as f:
        key = f.read() + " ".join(CFLAGS).encode() + os.uname().machine.encode()
    return os.path.join(cache_dir(), f"ctrconvert-{zlib.crc32(key):08x}"
                        f"{len(key):x}")


def build(force: bool = False) -> str:
    """Compiles the converter if needed; returns the binary's path."""
    path = binary_path()
    if os.path.exists(path) and not force:
        return path
    import subprocess
    cc = _compiler()
    if cc is None:
        raise BuildError("no C compiler found (tried $CC, cc, gcc, clang)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        proc = subprocess.run([cc, *CFLAGS, "-o", tmp, SOURCE, "-lm"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"{cc} failed to compile {SOURCE}:\n"
                             f"{proc.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)  # atomic: concurrent builds are harmless
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def available() -> tuple[str | None, str | None]:
    """(binary path, None) or (None, why not), building on first use."""
    try:
        return build(), None
    except (BuildError, OSError) as e:
        return None, str(e)


def unsupported_reason(layout: formats.Layout, compression: str
                       ) -> str | None:
    """Why this job cannot run natively at all, or None."""
    if compression:
        return f"compression {compression} is written by the Python converter"
    if layout.label_values not in (formats.BINARY_LABELS,
                                   formats.LIBFM_LABELS):
        return "labels other than the binary/libfm ones"
    if layout.sep is not None and len(layout.sep) != 1:
        return f"multi-byte separator {layout.sep!r}"
    for f in layout.fields:
        if f.fn not in _TRANSFORMS:
            return f"transform {f.transform!r} of field {f.name!r}"
    return None


class Job(collections.namedtuple(
        "Job", "layout files num_splits cum seed_key chunks shard_paths "
        "vocab_paths heads dense_prefix label_entries threads min_count "
        "quiet")):
    """Everything the C program needs (see the module docstring).

    layout: formats.Layout; files: (split index or -1, length of the
    file's UTF-8 BOM, path) per input;
    num_splits; cum: cumulative split fractions; seed_key; chunks:
    (file, start, end, [shard per split]); shard_paths[split][shard];
    vocab_paths[categorical field]; heads, dense_prefix, label_entries:
    the constant bytes of tfrecord.ExampleEncoder; threads; min_count;
    quiet.
    """

    __slots__ = ()

    def text(self) -> str:
        lay = self.layout
        lines = [f"threads {self.threads}", f"min_count {self.min_count}",
                 f"quiet {int(self.quiet)}",
                 *[f"{key} {int(os.environ[env])}"
                   for key, env in TUNING.items() if os.environ.get(env)],
                 f"sep {-1 if lay.sep is None else lay.sep[0]}",
                 f"num_columns {lay.num_columns}",
                 f"label_column {lay.label_column}",
                 f"has_header {int(lay.has_header)}",
                 f"quoted_csv {int(lay.quoted_csv)}",
                 f"libfm_labels {int(lay.label_values == formats.LIBFM_LABELS)}"]
        for f in lay.fields:
            lines.append(f"field {f.column} {f.kind[0]} {_TRANSFORMS[f.fn]}")
        hash_split = any(s < 0 for s, _, _ in self.files)
        lines.append(f"splits {int(hash_split)} {self.num_splits}")
        lines.append("cum " + " ".join(repr(float(c)) for c in self.cum))
        lines.append(f"seed_key {self.seed_key}")
        for split, origin, path in self.files:
            lines.append(f"file {split} {origin} {path}")
        lines.append(f"chunks {len(self.chunks)}")
        for file_idx, start, end, shards in self.chunks:
            padded = list(shards) + [0] * (3 - len(shards))
            lines.append(f"chunk {file_idx} {start} {end} "
                         + " ".join(map(str, padded)))
        for s, paths in enumerate(self.shard_paths):
            lines.append(f"shards {s} {len(paths)}")
            lines += [f"shard {s} {k} {p}" for k, p in enumerate(paths)]
        lines += [f"vocab {i} {p}" for i, p in enumerate(self.vocab_paths)]
        lines.append(f"max_ids_len {len(self.heads) - 1}")
        lines += [f"head {h.hex()}" for h in self.heads]
        lines.append(f"dense_prefix {self.dense_prefix.hex()}")
        lines += [f"label{i} {e.hex()}"
                  for i, e in enumerate(self.label_entries)]
        for p in [p for _, _, p in self.files] + list(self.vocab_paths) + [
                p for paths in self.shard_paths for p in paths]:
            if "\n" in p:
                raise Unsupported(f"path with a newline: {p!r}")
        return "\n".join(lines) + "\n"


class Result(collections.namedtuple(
        "Result", "read positives vocab_sizes crc32c")):
    """read, positives (rows with label 1): per split index; vocab_sizes:
    tokens per categorical field; crc32c: per input file, 8 hex digits."""

    __slots__ = ()


def run(binary: str, job: Job, job_dir: str, est_rows: int) -> Result:
    """Runs the converter; raises Unsupported, or NativeError on failure.

    Its stdout is read line by line for progress and results, then its
    stderr (a short message, written only when it fails).
    """
    job_file = os.path.join(job_dir, "_native_job.txt")
    with open(job_file, "w", encoding="utf-8") as f:
        f.write(job.text())
    bars = {}
    read, positives, vocab, crcs = {}, {}, {}, {}
    unsupported = None
    # stderr (a short message on failure, or CTRCONVERT_TIMES diagnostics)
    # goes to a file, so a full pipe can never block the converter.
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen([binary, job_file], stdout=subprocess.PIPE,
                                stderr=err_file, text=True, encoding="utf-8")
        try:
            for line in proc.stdout:
                key, _, rest = line.rstrip("\n").partition(" ")
                if key == "progress":
                    name, rows = rest.split()
                    _progress(bars, name, int(rows), est_rows, job.quiet)
                elif key == "read":
                    s, n = rest.split()
                    read[int(s)] = int(n)
                elif key == "positives":
                    s, n = rest.split()
                    positives[int(s)] = int(n)
                elif key == "vocab":
                    i, n = rest.split()
                    vocab[int(i)] = int(n)
                elif key == "crc32c":
                    i, h = rest.split()
                    crcs[int(i)] = h
                elif key == "unsupported":
                    unsupported = rest
            code = proc.wait()
        finally:
            for bar in bars.values():
                bar.close()
            if proc.poll() is None:  # interrupted: stop the converter
                proc.kill()
                proc.wait()
            proc.stdout.close()
            os.remove(job_file)
        err_file.seek(0)
        stderr = err_file.read().decode("utf-8", errors="replace")
    if code == 0 and stderr:  # diagnostics, e.g. CTRCONVERT_TIMES=1
        sys.stderr.write(stderr)
    if code == EXIT_UNSUPPORTED:
        raise Unsupported(unsupported or stderr.strip())
    if code != 0:
        raise NativeError(f"exit status {code}: "
                          f"{stderr.strip() or '(no message)'}")
    return Result(read=[read.get(s, 0) for s in range(job.num_splits)],
                  positives=[positives.get(s, 0)
                             for s in range(job.num_splits)],
                  vocab_sizes=[vocab[i] for i in range(len(job.vocab_paths))],
                  crc32c=[crcs[i] for i in range(len(job.files))])


_BAR_NAMES = {"count": "count vocab", "write": "write records"}


def _progress(bars: dict, name: str, rows: int, est_rows: int,
              quiet: bool) -> None:
    if quiet:
        return
    bar = bars.get(name)
    if bar is None:
        for other in bars.values():
            other.close()
        bar = bars[name] = tqdm.tqdm(
            total=est_rows, desc=_BAR_NAMES.get(name, name), unit=" rows",
            unit_scale=True, file=sys.stderr, dynamic_ncols=True)
    bar.update(rows - bar.n)
