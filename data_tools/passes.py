"""Running a pass of chunk tasks and collecting their results.

`run_pass` sends (mode, file, chunk, start, end) tasks to
`worker.process_chunk`, through a fork pool when the input is big enough to
gain from it, with a tqdm progress bar in rows/s. `Collector` adds up the
per-chunk results: token counts, rows read / written / rejected per split,
rows written with label 1, part files, and the first rejected lines with
file-global line numbers.
"""

from __future__ import annotations

import collections
import multiprocessing
import sys
from collections.abc import Sequence

import tqdm

from data_tools import vocab, worker
from data_tools.outputs import check_rejects

SMALL_INPUT_BYTES = 4 << 20   # below this, run in-process (no pool)


def run_pass(desc: str, tasks: list, workers: int, total_bytes: int,
                 est_rows: int, quiet: bool, on_result) -> None:
    """Runs tasks through `worker.process_chunk`, in a fork pool if useful."""
    bar = tqdm.tqdm(total=est_rows, desc=desc, unit=" rows", unit_scale=True,
                    disable=quiet, file=sys.stderr, dynamic_ncols=True)
    try:
        if (workers <= 1 or total_bytes < SMALL_INPUT_BYTES or len(tasks) < 2
                or "fork" not in multiprocessing.get_all_start_methods()):
            results = map(worker.process_chunk, tasks)
            _consume(results, bar, on_result)
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(min(workers, len(tasks))) as pool:
                _consume(pool.imap_unordered(worker.process_chunk, tasks),
                         bar, on_result)
        bar.total = bar.n
        bar.refresh()
    finally:
        bar.close()


def _consume(results, bar, on_result) -> None:
    for res in results:
        on_result(res)
        bar.update(sum(res["read"].values()))


class Collector:
    """Accumulates chunk results of one pass."""

    def __init__(self, num_categorical: int) -> None:
        self.counts = [collections.Counter() for _ in range(num_categorical)]
        self.read = collections.Counter()
        self.written = collections.Counter()
        self.positives = collections.Counter()
        self.rejected = collections.defaultdict(collections.Counter)
        self.parts: dict[str, list] = collections.defaultdict(list)
        self.lines: dict[tuple[int, int], int] = {}
        self.raw_samples: list = []

    def __call__(self, res: dict) -> None:
        fi, ci = res["file_idx"], res["chunk_idx"]
        self.lines[(fi, ci)] = res["lines"]
        if res["mode"] == "count":
            vocab.merge_counts(self.counts, res["counts"])
        self.read.update(res["read"])
        self.written.update(res["written"])
        self.positives.update(res["positives"])
        for s, c in res["rejected"].items():
            self.rejected[s].update(c)
        for s, (path, _rows) in res["parts"].items():
            self.parts[s].append((fi, ci, path))
        self.raw_samples.extend((fi, ci, ln, s, r, raw)
                                for s, ln, r, raw in res["samples"])

    def samples(self, paths: Sequence[str]) -> list[tuple]:
        """First rejected lines as (split, file, line number, reason, raw)."""
        first_line, acc = {}, collections.Counter()
        for fi, ci in sorted(self.lines):
            first_line[(fi, ci)] = acc[fi]
            acc[fi] += self.lines[(fi, ci)]
        rows = sorted((fi, first_line[(fi, ci)] + ln, s, r, raw)
                      for fi, ci, ln, s, r, raw in self.raw_samples)
        return [(s, paths[fi], ln, r, raw)
                for fi, ln, s, r, raw in rows[:worker.MAX_SAMPLES]]

    def check_rejects(self, split_files: dict[str, str], max_fraction: float,
                      paths: Sequence[str]) -> None:
        """Raises ConvertError if a split rejected more than `max_fraction`."""
        check_rejects(self.read, self.rejected, self.samples(paths),
                      split_files, max_fraction)

