"""Output-side helpers: shards, reject reports, JSON, input checksums.

The temporary output directory and its final rename are in `staging.py`.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Sequence


class ConvertError(Exception):
    """A user-facing conversion failure (bad input, options or output dir)."""


def assemble_shards(parts: Sequence[tuple[int, int, str]],
                    shard_of: Callable[[int, int], int],
                    shard_files: Sequence[str], out_dir: str,
                    compression: str) -> None:
    """Concatenates per-chunk part files into the shard files.

    `parts` are (file_idx, chunk_idx, path); each goes to shard
    `shard_of(file_idx, chunk_idx)`, in file and chunk order; `shard_files`
    are the shards' paths relative to `out_dir`.
    """
    import shutil
    groups: list[list[str]] = [[] for _ in shard_files]
    for file_idx, chunk_idx, path in sorted(parts):
        groups[shard_of(file_idx, chunk_idx)].append(path)
    for rel, group in zip(shard_files, groups):
        dest = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
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


def check_rejects(read: dict[str, int], rejected: dict[str, dict[str, int]],
                  samples: Sequence[tuple], split_files: dict[str, str],
                  max_fraction: float) -> None:
    """Raises ConvertError if a split rejected more than `max_fraction`.

    `samples` are the first rejected lines as (split, file, line, reason,
    raw), shown in the message.
    """
    msgs = []
    for split, n in read.items():
        rej = rejected.get(split, {})
        bad = sum(rej.values())
        if n and bad / n > max_fraction:
            reasons = ", ".join(f"{r}={c}" for r, c in sorted(rej.items()))
            msgs.append(f"{split} ({split_files[split]}): {bad} of {n} "
                        f"rows rejected ({100 * bad / n:.2f}%: {reasons})")
    if not msgs:
        return
    first = "\n".join(f"  {f}:{ln} {reason}: {raw[:200]!r}"
                      for _s, f, ln, reason, raw in samples[:5])
    raise ConvertError(
        "too many rejected rows, above --max-reject-fraction "
        f"{max_fraction}:\n  " + "\n  ".join(msgs)
        + f"\nfirst rejected lines:\n{first}\nFix the input, check "
        "--format and its options, or raise --max-reject-fraction.")


def write_rejected(path: str, samples: Sequence[tuple], total: int) -> None:
    """rejected.txt: a header, then split, file, line, reason, raw line (TSV)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# {total} rejected rows; the first {len(samples)} follow.\n")
        f.write("# split\tfile\tline\treason\traw_line\n")
        for split, file, line, reason, raw in samples:
            text = raw[:2000].decode("utf-8", "replace")
            f.write(f"{split}\t{file}\t{line}\t{reason}\t{text}\n")


def write_json(path: str, obj: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


class ChecksumThread:
    """CRC-32C of input files in a background thread (numpy releases the GIL).

    `start()`, then `join()`; `digests` maps each path to 8 hex digits.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        import threading
        self.paths = list(dict.fromkeys(paths))
        self.digests: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        from data_tools.crc32c import crc32c_file
        for path in self.paths:
            self.digests[path] = crc32c_file(path)
