"""The progress line of `predict` and of exact evaluation: rows done,
rate, share done, time left.

On a terminal the line is rewritten in place; in a log (a file, a pipe)
one line is written every few seconds.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Rows done, rate and (when the input size in bytes, or its rows, is
    known) the share done and the time left, written to `stream`: rewritten in place on a
    terminal (every `interval` s, default 0.5), one line every `interval` s
    (default 10) otherwise."""

    def __init__(self, total_bytes: int | None = None,
                 stream: TextIO | None = None,
                 interval: float | None = None, label: str = "predict",
                 total_rows: int | None = None):
        self.total_bytes = total_bytes or None
        self.total_rows = total_rows or None
        self.stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = (interval if interval is not None
                         else 0.5 if self._tty else 10.0)
        self.label = label
        self._start = self._last = time.perf_counter()
        self._open = False

    def update(self, rows: int, position: int | None = None) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self._start, 1e-9)
        text = f"{self.label}: {rows:,} rows, {rows / elapsed:,.0f} rows/s"
        if self.total_bytes and position:
            share = min(1.0, position / self.total_bytes)
            left = elapsed * (1.0 - share) / share
            text += (f", {100 * share:.0f}% of {_size(self.total_bytes)}, "
                     f"ETA {duration(left)}")
        elif self.total_rows and rows:
            share = min(1.0, rows / self.total_rows)
            left = elapsed * (1.0 - share) / share
            text += (f", {100 * share:.0f}% of {self.total_rows:,}, "
                     f"ETA {duration(left)}")
        self._write(text)

    def done(self, rows: int, output: str) -> None:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._write(f"{self.label}: {rows:,} rows in {elapsed:.1f} s "
                    f"({rows / elapsed:,.0f} rows/s) -> {output}")
        self.close()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def _write(self, text: str) -> None:
        if self._tty:
            self.stream.write("\r\033[K" + text)
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"


def duration(seconds: float) -> str:
    """h:mm:ss, e.g. "18:25:57" (progress lines' ETAs)."""
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
