"""`bench --peer fuxictr`: tfdsmlp and FuxiCTR timed in one run, interleaved.

Each round times every model once per library, each measurement in a fresh
process (`tf_side.py` in this environment, `fuxictr_peer.py` in the peer's
Python), alternating which library goes first from round to round, so slow
spells of a shared machine fall on both sides alike. The 1-minute load
average is read before every measurement and printed with the round; a
ratio is the median over rounds of the per-round ratios, never a figure
from another run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from tfdsmlp.peer import tf_side

PEER_SCRIPT = os.path.join(os.path.dirname(__file__), "fuxictr_peer.py")
METRICS = ("train_examples_per_s", "infer_examples_per_s", "batch1_p50_ms")
# tfdsmlp's other inference paths, each compared with the peer's figure:
# XLA in process, and the exported SavedModel in the C++ serving path
# (predict_indexed; plain and exported with --jit-compile).
ALTERNATIVES = {"xla_infer_examples_per_s": "infer_examples_per_s",
                "xla_batch1_p50_ms": "batch1_p50_ms",
                "cpp_infer_examples_per_s": "infer_examples_per_s",
                "cpp_batch1_p50_ms": "batch1_p50_ms",
                "cpp_xla_infer_examples_per_s": "infer_examples_per_s",
                "cpp_xla_batch1_p50_ms": "batch1_p50_ms"}
COLUMNS = (*METRICS, *ALTERNATIVES)


class PeerError(RuntimeError):
    """The peer environment is missing or one of its measurements failed."""


@dataclasses.dataclass(frozen=True)
class PeerBenchConfig:
    """What `run_peer_bench` measures.

    Attributes:
      data_dir: dataset directory (both sides train on its first batches).
      preset: tfdsmlp preset giving each model's settings.
      models: tfdsmlp models; FinalMLP is also timed against FuxiCTR's
        einsum fusion (`tf_side.PEERS`).
      peer_python: the peer environment's Python (`make peer`).
      rounds: interleaved rounds (ratios are medians over rounds).
      batch_size, num_batches: the cached batches both sides cycle over.
      steps, passes: training is the best of `passes` passes of `steps`.
      repeats: batch-1 inference calls timed per measurement.
      jit_compile: XLA for tfdsmlp's train step and inference function.
      precision: tfdsmlp's `train.precision` ("float32" or
        "mixed_bfloat16"; the peer computes in float32), also the
        precision of its C++-path exports (`export --precision`).
      cpp_serving: also export each model (plain and XLA) and
        time its predict_indexed signature in the C++ serving path
        (`tfdsmlp.serving_bench.harness`) in every round.
    """

    data_dir: str
    preset: str = "frappe"
    models: tuple[str, ...] = ("dnn", "gdcn", "dcnv2", "finalmlp", "dsmlp")
    peer_python: str = ".venv-peer/bin/python"
    rounds: int = 3
    batch_size: int = 4096
    num_batches: int = 4
    steps: int = 20
    passes: int = 3
    repeats: int = 200
    jit_compile: bool = False
    precision: str = "float32"
    cpp_serving: bool = True

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in tf_side.MODELS]
        if unknown:
            raise ValueError(f"bench --peer: no peer model for {unknown}; "
                             f"choose from {list(tf_side.MODELS)}")
        for name in ("rounds", "batch_size", "num_batches", "steps",
                     "passes", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"bench --peer: `{name}` should be >= 1")


def check_peer_python(path: str) -> str:
    """The peer Python's FuxiCTR and torch versions, or a `PeerError`
    saying how to install them."""
    if not os.path.exists(path):
        raise PeerError(f"bench --peer fuxictr: no peer environment at "
                        f"{path}. Create it with `make peer` (PyTorch CPU "
                        "build + FuxiCTR in .venv-peer) or pass "
                        "--peer-python PATH.")
    proc = subprocess.run(
        [path, "-c", ("import fuxictr, torch; print(fuxictr.__version__, "
                     "torch.__version__)")],
        capture_output=True, text=True, check=False)
    if proc.returncode:
        raise PeerError(f"bench --peer fuxictr: {path} cannot import "
                        f"fuxictr and torch ({proc.stderr.strip()[-300:]}). "
                        "Run `make peer`.")
    return proc.stdout.strip()


def _measure(cmd: list[str]) -> dict[str, Any]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise PeerError(f"bench --peer: `{' '.join(cmd)}` failed:\n"
                        f"{proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_1m"] = load
    result["process_s"] = seconds
    return result


def run_peer_bench(cfg: PeerBenchConfig, work_dir: str | None = None,
                   log=print) -> dict[str, Any]:
    """Runs the rounds (module docstring); returns every measurement and
    the median ratios."""
    versions = check_peer_python(cfg.peer_python)
    work = work_dir or tempfile.mkdtemp(prefix="tfdsmlp-peer-")
    spec = tf_side.write_inputs(cfg.data_dir, cfg.preset, cfg.models,
                                cfg.batch_size, cfg.num_batches, work)
    common = ["--spec", spec, "--steps", str(cfg.steps), "--passes",
              str(cfg.passes), "--repeats", str(cfg.repeats)]
    exports = timer = rows = None
    if cfg.cpp_serving:
        from tfdsmlp.serving_bench import harness

        log("[peer] exporting the models for the C++ serving path")
        exports = tf_side.export_models(spec, cfg.models,
                                        os.path.join(work, "saved"),
                                        cfg.precision)
        timer = harness.build_timer(os.path.join(work, "build"))
        rows = harness.IndexedRows.from_batches(spec)
    rounds: list[dict[str, Any]] = []
    peaks: list[float] = []
    for r in range(cfg.rounds):
        row: dict[str, Any] = {}
        peaks.append(tf_side.matmul_peak(
            "bfloat16" if cfg.precision == "mixed_bfloat16" else "float32"))
        log(f"[peer] round {r + 1}: matmul peak {peaks[-1]:.0f} GFLOP/s")
        for name in cfg.models:
            jobs = [("tfdsmlp", [sys.executable, "-m",
                                 "tfdsmlp.peer.tf_side", "--model", name,
                                 *common, "--precision", cfg.precision,
                                 *(["--jit-compile"] if cfg.jit_compile
                                   else [])])]
            jobs += [(f"fuxictr:{peer}", [cfg.peer_python, PEER_SCRIPT,
                                          "--model", peer, *common])
                     for peer in tf_side.PEERS.get(name, (name,))]
            if r % 2:
                jobs.reverse()
            row[name] = {}
            for side, cmd in jobs:
                log(f"[peer] round {r + 1}/{cfg.rounds} {name} {side}")
                row[name][side] = _measure(cmd)
                if side == "tfdsmlp" and exports:
                    row[name][side].update(_cpp_figures(
                        timer, exports[name], rows, cfg))
        rounds.append(row)
    return {"config": dataclasses.asdict(cfg), "peer": versions,
            "cpu_count": os.cpu_count(), "rounds": rounds,
            "matmul_peak_gflops": peaks, "ratios": ratios(rounds),
            "share_of_peak": share_of_peak(rounds, peaks)}


def share_of_peak(rounds: list[dict[str, Any]], peaks: list[float]
                  ) -> dict[str, float]:
    """Per model: median over rounds of tfdsmlp's training GFLOP/s (3 x
    forward FLOPs x examples/s) over that round's matmul peak."""
    out = {}
    for name in rounds[0]:
        shares = [row[name]["tfdsmlp"]["train_gflops"] / peak
                  for row, peak in zip(rounds, peaks)
                  if "train_gflops" in row[name]["tfdsmlp"]]
        if shares:
            out[name] = statistics.median(shares)
    return out


def _cpp_figures(timer: str, paths: dict[str, str], rows,
                 cfg: PeerBenchConfig) -> dict[str, float]:
    """predict_indexed of each export (`paths`: {"plain"|"xla": dir}) in
    the C++ path, at batch 1 and `cfg.batch_size`."""
    from tfdsmlp.serving_bench import harness

    out = {}
    for kind, path in paths.items():
        prefix = "cpp_" if kind == "plain" else "cpp_xla_"
        timed = harness.time_batches(timer, path, "predict_indexed", rows,
                                     (1, cfg.batch_size), cfg.repeats,
                                     min_large_calls=10)
        out[f"{prefix}batch1_p50_ms"] = timed[1]["p50_ms"]
        out[f"{prefix}infer_examples_per_s"] = timed[cfg.batch_size][
            "examples_per_s"]
    return out


def ratios(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model and peer: median over rounds of tfdsmlp / peer for the
    throughputs, peer / tfdsmlp for the batch-1 latency (> 1: tfdsmlp is
    better on every entry)."""
    out: dict[str, dict[str, float]] = {}
    for name in rounds[0]:
        for side in rounds[0][name]:
            if side == "tfdsmlp":
                continue
            per: dict[str, list[float]] = {m: [] for m in COLUMNS}
            for row in rounds:
                ours, peer = row[name]["tfdsmlp"], row[name][side]
                pairs = [(m, m) for m in METRICS] + [
                    (mine, theirs) for mine, theirs in ALTERNATIVES.items()
                    if mine in ours]
                for mine, theirs in pairs:
                    per[mine].append(
                        peer[theirs] / ours[mine] if mine.endswith("_ms")
                        else ours[mine] / peer[theirs])
            out[f"{name} vs {side}"] = {m: statistics.median(v)
                                        for m, v in per.items() if v}
    return out


def format_peer_bench(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [(f"peer: fuxictr/torch {result['peer']}; batch "
             f"{cfg['batch_size']}, preset {cfg['preset']}, "
             f"{result['cpu_count']} CPUs, {cfg['rounds']} interleaved "
             f"rounds, tfdsmlp jit_compile={cfg['jit_compile']}, "
             f"precision={cfg['precision']}"), "",
             ("| round | model | library | load 1m | train ex/s "
             "| infer ex/s | batch-1 p50 ms | XLA infer ex/s "
             "| XLA batch-1 p50 ms | C++ ex/s | C++ batch-1 p50 ms "
             "| C++ XLA ex/s | C++ XLA batch-1 p50 ms | first step s "
             "| process s |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r, row in enumerate(result["rounds"], 1):
        for name, sides in row.items():
            for side, m in sides.items():
                lines.append(
                    f"| {r} | {name} | {side} | {m['load_1m']:.2f} "
                    f"| {m['train_examples_per_s']:,.0f} "
                    f"| {m['infer_examples_per_s']:,.0f} "
                    f"| {m['batch1_p50_ms']:.3f} "
                    + "".join(
                        f"| {_num(m, k, ',.0f' if 'examples' in k else '.3f')} "
                        for k in ALTERNATIVES) +
                    f"| {m['first_step_s']:.1f} "
                    f"| {m['process_s']:.1f} |")
    peaks = result.get("matmul_peak_gflops") or []
    if result.get("share_of_peak"):
        dtype = ("bfloat16" if cfg["precision"] == "mixed_bfloat16"
                 else "float32")
        peak_line = (f"matmul peak per round (2048^3, {dtype}): "
                     + ", ".join(f"{p:.0f}" for p in peaks) + " GFLOP/s")
        lines += ["", peak_line, "",
                  ("| model | forward MFLOP per example | tfdsmlp train "
                   "GFLOP/s (3 x forward x ex/s) | share of the peak |"),
                  "|---|---|---|---|"]
        first = result["rounds"][0]
        for name, share in result["share_of_peak"].items():
            ours = [row[name]["tfdsmlp"]["train_gflops"]
                    for row in result["rounds"]]
            lines.append(
                f"| {name} | "
                f"{first[name]['tfdsmlp']['forward_flops_per_example'] / 1e6:.2f}"
                f" | {statistics.median(ours):.0f} | {100 * share:.0f}% |")
    lines += ["", "median ratio over rounds (> 1: tfdsmlp better)", "",
              ("| model vs peer | train ex/s | infer ex/s | batch-1 p50 "
               "| XLA infer ex/s | XLA batch-1 p50 | C++ ex/s "
               "| C++ batch-1 p50 | C++ XLA ex/s | C++ XLA batch-1 p50 |"),
              "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in result["ratios"].items():
        cells = [_num(r, m, ".2f", "x") for m in COLUMNS]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _num(d: dict, key: str, fmt: str, suffix: str = "") -> str:
    return format(d[key], fmt) + suffix if key in d else "-"
