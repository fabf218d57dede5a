"""The output directory: built in a hidden temporary directory, then renamed.

`convert` and `synth` write everything into `.<out>.tmp-<host>-<pid>-<hex>`
next to `--out` (same filesystem, so the final rename is atomic) and move
it into place only when the whole dataset is written: a failed run leaves
no output, and removes the parent directories it created for it.

A run killed before it could clean up (kill -9, a power cut) leaves its
temporary directory behind (with decompressed inputs, possibly large). The
next run for the same output removes those whose process is gone: the
host and pid in the name say whose it is, so a conversion still running,
here or on another machine sharing the filesystem, keeps its directory.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from typing import Self

from data_tools.outputs import ConvertError

HOST = re.sub(r"\W", "_", os.uname().nodename, flags=re.ASCII) or "host"
# What follows ".<out>.tmp-": host (absent in names of older versions),
# pid, random hex, and ".old" for a replaced output (see finalize_dir).
_TEMP_SUFFIX = re.compile(
    r"(?:(?P<host>\w+)-)?(?P<pid>\d+)-[0-9a-f]{8}(?:\.old)?", re.ASCII)


def check_output_dir(out_dir: str, overwrite: bool) -> None:
    """Refuses an existing output unless `overwrite` and it looks like a
    dataset."""
    if not os.path.lexists(out_dir):
        return
    if not overwrite:
        raise ConvertError(
            f"output directory {out_dir} already exists; pass --overwrite "
            f"(overwrite=True) to replace it")
    if not os.path.isdir(out_dir):
        raise ConvertError(f"output path {out_dir} exists and is not a "
                           f"directory; refusing to replace it")
    if os.listdir(out_dir) and not os.path.exists(
            os.path.join(out_dir, "dataset.json")):
        raise ConvertError(
            f"output directory {out_dir} is not empty and has no dataset.json;"
            f" refusing to delete it even with --overwrite")


def _temp_prefix(out_dir: str) -> tuple[str, str]:
    """(parent directory, name prefix) of `out_dir`'s temporary dirs."""
    path = os.path.abspath(out_dir)
    return os.path.dirname(path), f".{os.path.basename(path)}.tmp-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(out_dir: str, quiet: bool = False) -> list[str]:
    """Removes temporary dirs of `out_dir` left by dead processes of this
    host; returns their paths."""
    parent, prefix = _temp_prefix(out_dir)
    if not os.path.isdir(parent):
        return []
    removed = []
    for entry in os.scandir(parent):
        m = (_TEMP_SUFFIX.fullmatch(entry.name[len(prefix):])
             if entry.name.startswith(prefix) else None)
        if (m is None or m["host"] not in (None, HOST)
                or _process_alive(int(m["pid"]))):
            continue
        _rmtree(entry.path)
        removed.append(entry.path)
        if not quiet:
            print(f"data_tools: removed {entry.path}, left by an interrupted "
                  f"run (process {m['pid']} is gone)", file=sys.stderr)
    return removed


def _rmtree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _first_missing_dir(path: str) -> str | None:
    """The top directory that os.makedirs(path) would create, or None."""
    missing = None
    while not os.path.isdir(path):
        missing, path = path, os.path.dirname(path)
    return missing


def _remove_empty_dirs(path: str, top: str) -> None:
    """Removes `path` and its parents up to `top` while they are empty."""
    while True:
        try:
            os.rmdir(path)
        except OSError:
            return
        if path == top:
            return
        path = os.path.dirname(path)


class TempOutput:
    """`with TempOutput(out, overwrite, quiet) as tmp:` write into
    `tmp.path`, then `tmp.commit()` moves it to `out`. On leaving, the
    temporary dir is gone, and without a commit so are the parent dirs of
    `out` it created."""

    def __init__(self, out_dir: str, overwrite: bool,
                 quiet: bool = False) -> None:
        self.out_dir, self.overwrite, self.quiet = out_dir, overwrite, quiet
        self.path = ""
        self._created: str | None = None
        self._committed = False

    def __enter__(self) -> Self:
        parent, prefix = _temp_prefix(self.out_dir)
        self._created = _first_missing_dir(parent)
        remove_stale_temps(self.out_dir, self.quiet)
        self.path = os.path.join(parent, f"{prefix}{HOST}-{os.getpid()}-"
                                         f"{os.urandom(4).hex()}")
        os.makedirs(self.path)  # and the missing parents
        return self

    def commit(self) -> None:
        """Moves the temporary dir to `out`, replacing an old one if
        `overwrite`."""
        check_output_dir(self.out_dir, self.overwrite)
        old = None
        if os.path.lexists(self.out_dir):
            old = self.path + ".old"
            os.replace(self.out_dir, old)
        os.replace(self.path, self.out_dir)
        self._committed = True
        if old:
            _rmtree(old)

    def __exit__(self, *exc) -> None:
        if os.path.exists(self.path):
            _rmtree(self.path)
        if not self._committed and self._created:
            _remove_empty_dirs(os.path.dirname(self.path), self._created)
