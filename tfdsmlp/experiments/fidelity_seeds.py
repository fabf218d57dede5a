"""The fidelity study over several seeds: its spread, and KD's paired effect.

    python -m tfdsmlp.experiments.fidelity --out DIR --seeds 0,1,2 [...]

Each seed is one whole study (`fidelity.run_fidelity`: its own planted
truth, rows, teacher and students) in DIR/seed_<s>/. A seed whose
`fidelity.json` is already there is read instead of run again when its
recorded settings are these (the seed apart); with other settings it is an
error that names the file and the first differing setting, so outputs of
different configs are never mixed. The summary, DIR/fidelity_seeds.{json,md,png},
gives for every width and column the mean and standard deviation over the
seeds (numpy's `std`, as the experiment tables) of the MSE against the
truth, plus two paired differences taken seed by seed:

  kd_effect        main1 - main1_nokd: how much further from the truth
                   distillation leaves the main MLP than the labels alone
                   (> 0: KD costs fidelity to the truth)
  main1_vs_cross   main1's MSE against the teacher's probabilities
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

from tfdsmlp.experiments.fidelity import (
    COLUMNS,
    FidelityConfig,
    plot_widths,
    run_fidelity,
    write_result,
)

import numpy as np

PAIRED = ("kd_effect", "main1_vs_cross")


def seed_dir(out: str, seed: int) -> str:
    return os.path.join(out, f"seed_{seed}")


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config less its seed, JSON-normalised (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in config.items() if k != "seed"}


def _check_same(path: str, recorded: dict[str, Any],
                wanted: dict[str, Any]) -> None:
    rec, want = _settings(recorded), _settings(wanted)
    if rec == want:
        return
    key = next(k for k in sorted(set(rec) | set(want))
               if rec.get(k) != want.get(k))
    raise ValueError(
        f"{path} was made with {key}={rec.get(key)!r}, not "
        f"{want.get(key)!r}: remove it or choose another --out; a summary "
        "never mixes studies of different settings.")


def run_seeds(cfg: FidelityConfig, seeds: tuple[int, ...], out: str,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs (or reads back) the study of each seed; returns `summarize` of
    them and writes it to OUT/fidelity_seeds.{json,md,png}."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError("`seeds` should be distinct seeds. Received: "
                         f"`seeds={seeds}`")
    results, run_seconds = [], []
    for i, seed in enumerate(seeds):
        one = dataclasses.replace(cfg, seed=seed)
        path = os.path.join(seed_dir(out, seed), "fidelity.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                result = json.load(f)
            if result["config"]["seed"] != seed:
                raise ValueError(f"{path} holds the study of seed "
                                 f"{result['config']['seed']}, not {seed}")
            _check_same(path, result["config"], dataclasses.asdict(one))
            log(f"[fidelity] seed {seed} ({i + 1}/{len(seeds)}): read "
                f"{path} (same settings)")
        else:
            log(f"[fidelity] seed {seed} ({i + 1}/{len(seeds)}): running")
            start = time.monotonic()
            result = run_fidelity(one, log=log)
            write_result(result, seed_dir(out, seed))
            run_seconds.append(time.monotonic() - start)
            left = len(seeds) - i - 1
            if left:
                eta = left * sum(run_seconds) / len(run_seconds)
                log(f"[fidelity] seed {seed} took {run_seconds[-1]:.0f} s; "
                    f"ETA of the {left} left: {eta / 60:.0f} min")
        results.append(result)
    summary = summarize(results)
    write_result(summary, out, "fidelity_seeds", markdown_seeds, plot_seeds)
    return summary


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over the studies of each width's figures.

    Returns {"seeds", "settings", "widths": [{"width", "values", "mean",
    "std"}]}, where "values" maps each of `COLUMNS` and `PAIRED` to the
    per-seed figures in the order of `results`."""
    if not results:
        raise ValueError("summarize needs at least one study")
    first = results[0]["config"]
    for r in results[1:]:
        _check_same(f"the study of seed {r['config']['seed']}", r["config"],
                    first)
    rows = []
    for i, width in enumerate(first["widths"]):
        per = [r["widths"][i] for r in results]
        values = {c: [p["mse"][c] for p in per] for c in COLUMNS}
        values["kd_effect"] = [p["mse"]["main1"] - p["mse"]["main1_nokd"]
                               for p in per]
        values["main1_vs_cross"] = [p["main1_vs_cross_mse"] for p in per]
        rows.append({
            "width": width, "values": values,
            "mean": {k: float(np.mean(v)) for k, v in values.items()},
            "std": {k: float(np.std(v)) for k, v in values.items()}})
    return {"seeds": [r["config"]["seed"] for r in results],
            "settings": _settings(first), "widths": rows}


def markdown_seeds(summary: dict[str, Any]) -> str:
    """Mean ± std table (rows: widths; columns: COLUMNS, then PAIRED)."""
    cols = COLUMNS + PAIRED
    lines = ["| MLP width | " + " | ".join(cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for row in summary["widths"]:
        lines.append(f"| {row['width']} | " + " | ".join(
            f"{row['mean'][c]:.5f} ± {row['std'][c]:.5f}" for c in cols)
            + " |")
    return "\n".join(lines)


def plot_seeds(summary: dict[str, Any], path: str) -> bool:
    """Figure 3 with the spread: mean MSE per width, bars of one std."""
    rows = summary["widths"]
    return plot_widths(
        [r["width"] for r in rows],
        {c: [r["mean"][c] for r in rows] for c in COLUMNS},
        f"MSE against p*, mean of {len(summary['seeds'])} seeds", path,
        stds={c: [r["std"][c] for r in rows] for c in COLUMNS})
