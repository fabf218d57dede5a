"""Where a training step's time goes: the op types of a profiler trace.

`train.profile_batches: [first, last]` makes a phase write a TensorFlow
profiler trace into its TensorBoard directory (`RUN/tb/<phase>`); open it
in TensorBoard's Profile tab (`tensorboard --logdir RUN/tb`; the plugin is
`tensorboard-plugin-profile`, pinned in requirements.txt), or print the
op types by self time with

    python -m tfdsmlp.training.profile RUN/tb/teacher --steps 10

(the summary is xprof's framework-op statistics, the Profile tab's
"TensorFlow Stats" table, grouped by op type; `IDLE` is thread time not
in any op).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys


def trace_files(log_dir: str) -> list[str]:
    """The newest trace (`*.xplane.pb`) under `log_dir`."""
    found = sorted(glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"),
                             recursive=True), key=os.path.getmtime)
    if not found:
        raise FileNotFoundError(
            f"no profiler trace under {log_dir}: train with "
            "`--set train.profile_batches=[2,4]` (or "
            "`tf.profiler.experimental.start`) first")
    newest = os.path.dirname(found[-1])
    return sorted(glob.glob(os.path.join(newest, "*.xplane.pb")))


def op_type_times(log_dir: str) -> list[tuple[str, float]]:
    """[(op type, total self time in microseconds)], largest first."""
    try:
        from xprof.convert import raw_to_tool_data
    except ImportError as e:  # pragma: no cover - pinned in requirements
        raise ImportError("the profile summary needs xprof "
                          "(pip install tensorboard-plugin-profile, pinned "
                          "in requirements.txt)") from e
    data, _ = raw_to_tool_data.xspace_to_tool_data(
        trace_files(log_dir), "framework_op_stats", {})
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    cols = [c["id"] for c in table["cols"]]
    totals: dict[str, float] = collections.defaultdict(float)
    for row in table["rows"]:
        cells = {cols[i]: (c or {}).get("v") for i, c in enumerate(row["c"])}
        totals[cells["type"]] += float(cells["total_self_time"] or 0.0)
    return sorted(totals.items(), key=lambda kv: -kv[1])


def format_op_times(times: list[tuple[str, float]], steps: int = 1,
                    top: int = 15) -> str:
    busy = sum(t for op, t in times if op != "IDLE") or 1.0
    lines = ["| op type | ms per step | share of busy time |",
             "|---|---|---|"]
    for op, t in [kv for kv in times if kv[0] != "IDLE"][:top]:
        lines.append(f"| {op} | {t / steps / 1000:.2f} | {100 * t / busy:.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Op types of a profiler trace "
                                            "by self time.")
    p.add_argument("log_dir", help="TensorBoard directory of a phase, e.g. "
                                   "RUN/tb/teacher")
    p.add_argument("--steps", type=int, default=1,
                   help="Training steps the trace covers (for ms per step).")
    p.add_argument("--top", type=int, default=15, help="Rows to print.")
    args = p.parse_args(argv)
    print(format_op_times(op_type_times(args.log_dir), args.steps, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
