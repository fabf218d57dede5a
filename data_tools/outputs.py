"""Output-side helpers: temp dir + atomic rename, shards, reports, checksums."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import zlib
from typing import Any, Sequence


class ConvertError(Exception):
    """A user-facing conversion failure (bad input, options or output dir)."""


def check_output_dir(out_dir: str, overwrite: bool) -> None:
    """Refuses an existing output unless `overwrite` and it looks like a dataset."""
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


def make_temp_dir(out_dir: str) -> str:
    """A fresh directory next to `out_dir` (same filesystem, for rename)."""
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(os.path.abspath(out_dir))
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}-"
                               f"{secrets.token_hex(4)}")
    os.makedirs(tmp)
    return tmp


def finalize_dir(tmp_dir: str, out_dir: str, overwrite: bool) -> None:
    """Moves `tmp_dir` to `out_dir`, replacing an old one if `overwrite`."""
    check_output_dir(out_dir, overwrite)
    old = None
    if os.path.lexists(out_dir):
        old = tmp_dir + ".old"
        os.replace(out_dir, old)
    os.replace(tmp_dir, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def assemble_shards(parts: Sequence[tuple[int, int, str]], num_shards: int,
                    num_chunks: dict[int, int], out_dir: str, split: str,
                    compression: str) -> list[str]:
    """Concatenates per-chunk part files into `num_shards` shard files.

    `parts` are (file_idx, chunk_idx, path); chunk c of a file with C chunks
    goes to shard floor(c * num_shards / C), in file and chunk order. Returns
    the shard paths relative to `out_dir`.
    """
    ext = ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    groups: list[list[str]] = [[] for _ in range(num_shards)]
    for file_idx, chunk_idx, path in sorted(parts):
        groups[chunk_idx * num_shards // num_chunks[file_idx]].append(path)
    rel_paths = []
    for k, group in enumerate(groups):
        rel = f"{split}/part-{k:05d}{ext}"
        dest = os.path.join(out_dir, rel)
        if len(group) == 1:
            os.replace(group[0], dest)
        else:
            with open(dest, "wb") as out:
                if not group and compression == "GZIP":
                    z = zlib.compressobj(6, zlib.DEFLATED, 31)
                    out.write(z.compress(b"") + z.flush())
                for path in group:
                    with open(path, "rb") as f:
                        shutil.copyfileobj(f, out, 16 << 20)
                    os.remove(path)
        rel_paths.append(rel)
    return rel_paths


def write_rejected(path: str, samples: Sequence[tuple], total: int) -> None:
    """rejected.txt: a header, then split, file, line, reason, raw line (TSV)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# {total} rejected rows; the first {len(samples)} follow.\n")
        f.write("# split\tfile\tline\treason\traw_line\n")
        for split, file, line, reason, raw in samples:
            text = raw[:2000].decode("utf-8", "replace")
            f.write(f"{split}\t{file}\t{line}\t{reason}\t{text}\n")


def write_json(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


class Sha256Thread(threading.Thread):
    """Hashes files in the background (hashlib releases the GIL)."""

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__(daemon=True)
        self.paths = list(dict.fromkeys(paths))
        self.digests: dict[str, str] = {}

    def run(self) -> None:
        for path in self.paths:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(8 << 20), b""):
                    h.update(block)
            self.digests[path] = h.hexdigest()
