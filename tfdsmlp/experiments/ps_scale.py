"""python -m tfdsmlp.experiments.ps_scale --out DIR [options]

Measures `--strategy parameter_server` on one host (docs/SCALING.md,
section 3): a loopback cluster of `--ps` parameter servers and `--workers`
workers (`python -m tfdsmlp serve-cluster-task` subprocesses) and a
coordinator subprocess train the same CTR model as the one-process default
strategy, on synthetic data (`data_tools.synth.write_synthetic`, 8
categorical fields with Zipf-like ids, 2 numeric), with tables sized to
hold `ids` rows in all (`sized_spec`: a vocabulary that large would need far
more rows than a benchmark writes, so the data's ids fill the start of each
field's rows; the rows a step reads, and so its traffic, depend on the
batch, not on which rows). Each case trains `--epochs` epochs of `--steps` steps through
the package's own `fit_phase` (the teacher phase's fit: same input
pipeline, exact validation on a one-batch split, no backups); its epochs
after the first (tracing) give:

- examples/s: steps x batch / epoch seconds (the epoch includes one
  validation batch);
- bytes per step: the growth of the loopback interface's byte counter
  (`/proc/net/dev`, `lo`) over those epochs / their steps, against the
  arithmetic: the batch's embedding rows read and their gradients sent
  (2 x batch x categorical fields x dim x 4 B) plus every whole (unsharded)
  trainable weight read and its gradient sent (2 x weights x 4 B);
- peak RSS of every process (`ru_maxrss` from `os.wait4`: exact, not
  sampled), and its RSS once the servers are up (before the coordinator).

Cases are `strategy:ids` (`--cases`), e.g. the default
`parameter_server:50000000,parameter_server:5000000,default:5000000`.
Nothing else should use the loopback interface while it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import tfdsmlp  # noqa: F401
from tfdsmlp.experiments.runner import wait_peak_rss
from tfdsmlp.training.parameter_server import free_ports

FIELDS = 8      # categorical fields of the synthetic data
NUMERIC = 2
FLOAT_BYTES = 4


def loopback_bytes(text: str | None = None) -> int:
    """Bytes received on `lo` (each loopback byte is received once)."""
    if text is None:
        with open("/proc/net/dev", encoding="ascii") as f:
            text = f.read()
    for line in text.splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            return int(counters.split()[0])
    raise RuntimeError("/proc/net/dev has no `lo` interface: the loopback "
                       "traffic cannot be measured on this machine.")


def rss_mib(pid: int) -> float:
    """Current resident set of `pid` in MiB (0 when it has exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def expected_bytes_per_step(batch: int, fields: int, dim: int,
                            dense_weights: int) -> dict[str, int]:
    """The arithmetic of docs/SCALING.md section 3 for one step."""
    sparse = 2 * batch * fields * dim * FLOAT_BYTES
    dense = 2 * dense_weights * FLOAT_BYTES
    return {"sparse": sparse, "dense": dense, "total": sparse + dense}


def epoch_figures(epochs: list[dict], steps: int, batch: int
                  ) -> dict[str, float]:
    """Examples/s and loopback bytes per step over the epochs after the
    first (which traces and compiles)."""
    timed = epochs[1:] or epochs
    seconds = sum(e["end"] - e["start"] for e in timed)
    moved = sum(e["lo_end"] - e["lo_start"] for e in timed)
    return {"examples_per_s": len(timed) * steps * batch / seconds,
            "epoch_seconds": [round(e["end"] - e["start"], 2)
                              for e in epochs],
            "bytes_per_step": moved / (len(timed) * steps)}


def sized_spec(spec, ids: int):
    """`spec` with its categorical tables sized to `ids` rows in all (each
    field `ids / fields` rows, at least its vocabulary): the data's ids
    fill the start of each field's rows."""
    fields = [f for f in spec.fields if f.kind == "categorical"]
    rows = ids // len(fields)
    return dataclasses.replace(spec, fields=tuple(
        dataclasses.replace(f, vocab_size=max(f.vocab_size, rows))
        if f.kind == "categorical" else f for f in spec.fields))


# -- the coordinator (a subprocess of its own) ----------------------------
def _coordinate(case_file: str) -> None:
    from tfdsmlp.dataset_dir import DatasetDir
    from tfdsmlp.models.registry import build_model
    from tfdsmlp.training.fit import compile_ctr_model, fit_phase
    from tfdsmlp.training.parameter_server import (
        shard_layout,
        sharded_variables,
    )
    from tfdsmlp.training.strategy import get_strategy
    from tfdsmlp.training.train_config import TrainConfig

    import tensorflow as tf

    with open(case_file, encoding="utf-8") as f:
        case = json.load(f)
    data = DatasetDir.open(case["data"])
    spec = sized_spec(data.spec, case["ids"])
    cfg = TrainConfig(batch_size=case["batch"], epochs=case["epochs"],
                      patience=case["epochs"], optimizer=case["optimizer"],
                      steps_per_execution=case["steps_per_execution"],
                      seed=0)
    strategy = get_strategy(case["strategy"], case["min_shard_rows"])
    with strategy.scope():
        tf.keras.utils.set_random_seed(0)
        model = build_model(case["model"], case["params"], spec)
        model(model.dummy_inputs())
        compile_ctr_model(model, cfg)
    sharded = sharded_variables(model).values()
    skip = {id(v) for var in sharded for v in (var, *var.variables)}
    # Whole weights: read from their server and updated every step.
    dense = sum(int(w.shape.num_elements()) for w in model.trainable_weights
                if id(w) not in skip and not (
                    w.shape.rank and w.shape[0] >= case["min_shard_rows"]))
    epochs = []

    class EpochMeter(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append({"start": time.time(), "lo_start": loopback_bytes()})

        def on_epoch_end(self, epoch, logs=None):
            epochs[-1].update(end=time.time(), lo_end=loopback_bytes())

    fit_phase(model, data.path, cfg, strategy=strategy, verbose=2,
              extra_callbacks=[EpochMeter()], phase=case["name"])
    with open(case["result"], "w", encoding="utf-8") as f:
        json.dump({"epochs": epochs, "dense_weights": dense,
                   "table_rows": int(sum(spec.vocab_sizes)),
                   "shards": shard_layout(model)}, f, indent=1)


# -- the measurement ------------------------------------------------------
def _env(cluster, task_type, index):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if cluster:
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {
            "type": task_type, "index": index}})
    else:
        env.pop("TF_CONFIG", None)
    return env


def run_case(out: str, name: str, strategy: str, ids: int, data: str,
             args: argparse.Namespace) -> dict:
    """One case: servers (under parameter_server), the coordinator, its
    figures and every process's peak RSS."""
    case = {"name": name, "strategy": strategy, "data": data, "ids": ids,
            "batch": args.batch, "epochs": args.epochs,
            "optimizer": args.optimizer, "model": args.model,
            "params": {**json.loads(args.params), "embedding_dim": args.dim},
            "steps_per_execution": args.steps_per_execution,
            "min_shard_rows": args.min_shard_rows,
            "result": os.path.join(out, f"{name}.result.json")}
    case_file = os.path.join(out, f"{name}.case.json")
    with open(case_file, "w", encoding="utf-8") as f:
        json.dump(case, f, indent=1)
    cluster, servers = None, {}
    if strategy == "parameter_server":
        ports = free_ports(1 + args.workers + args.ps)
        cluster = {"chief": [f"127.0.0.1:{ports[0]}"],
                   "worker": [f"127.0.0.1:{p}"
                              for p in ports[1:1 + args.workers]],
                   "ps": [f"127.0.0.1:{p}" for p in ports[1 + args.workers:]]}
        for task in ("ps", "worker"):
            for i in range(len(cluster[task])):
                with open(os.path.join(out, f"{name}.{task}{i}.log"),
                          "w") as log:
                    servers[f"{task}{i}"] = subprocess.Popen(
                        [sys.executable, "-m", "tfdsmlp",
                         "serve-cluster-task"], env=_env(cluster, task, i),
                        stdout=log, stderr=subprocess.STDOUT)
        time.sleep(args.settle)
    idle = {k: round(rss_mib(p.pid), 1) for k, p in servers.items()}
    lo_idle = loopback_bytes()
    time.sleep(1.0)
    lo_idle = loopback_bytes() - lo_idle
    start = time.time()
    log_path = os.path.join(out, f"{name}.chief.log")
    with open(log_path, "w") as log:
        chief = subprocess.Popen(
            [sys.executable, "-m", "tfdsmlp.experiments.ps_scale",
             "--coordinator", case_file], env=_env(cluster, "chief", 0),
            stdout=log, stderr=subprocess.STDOUT)
    peak = {}
    try:
        peak["chief"] = wait_peak_rss(chief)
    finally:
        for key, proc in servers.items():
            proc.kill()
            peak[key] = wait_peak_rss(proc)
    if chief.returncode != 0:
        with open(log_path, errors="replace") as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"case {name}: the coordinator failed "
                           f"(exit {chief.returncode}); {log_path}:\n{tail}")
    with open(case["result"], encoding="utf-8") as f:
        result = json.load(f)
    figures = epoch_figures(result["epochs"], args.steps, args.batch)
    return {"case": name, "strategy": strategy,
            "table_rows": result["table_rows"], "dim": args.dim,
            "parameter_servers": args.ps if cluster else 0,
            "workers": args.workers if cluster else 0,
            "wall_seconds": round(time.time() - start, 1),
            **figures,
            "expected_bytes_per_step": expected_bytes_per_step(
                args.batch, FIELDS, args.dim, result["dense_weights"]),
            "idle_loopback_bytes_per_s": lo_idle,
            "peak_rss_mib": {k: round(v, 1) for k, v in peak.items()},
            "rss_mib_servers_idle": idle,
            "shards": result["shards"],
            "load_average": os.getloadavg()}


def dataset(out: str, rows: int, batch: int) -> str:
    """The synthetic data every case trains on (written once): 8
    categorical fields of Zipf-like ids from 100,000 tokens each."""
    from data_tools.synth import write_synthetic

    path = os.path.join(out, "data")
    if not os.path.exists(os.path.join(path, "dataset.json")):
        print(f"[ps_scale] writing {rows:,} training rows to {path}",
              flush=True)
        write_synthetic(path, num_rows=rows, seed=0,
                        num_categorical=FIELDS, num_numeric=NUMERIC,
                        vocab_size=100_000, valid_rows=batch,
                        test_rows=batch)
    return path

def _table(results: list[dict]) -> str:
    lines = [("| case | table rows x dim | ex/s | bytes/step measured | "
              "bytes/step arithmetic (sparse + dense) | peak RSS MiB |"),
             "|---|---|---|---|---|---|"]
    for r in results:
        exp = r["expected_bytes_per_step"]
        rss = ", ".join(f"{k} {v:,.0f}" for k, v in r["peak_rss_mib"].items())
        moved = (f"{r['bytes_per_step'] / 1e6:.2f} MB"
                 if r["strategy"] == "parameter_server" else "-")
        lines.append(
            f"| {r['case']} | {r['table_rows']:,} x {r['dim']} | "
            f"{r['examples_per_s']:,.0f} | {moved} | "
            f"{exp['total'] / 1e6:.2f} MB ({exp['sparse'] / 1e6:.2f} + "
            f"{exp['dense'] / 1e6:.2f}) | {rss} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tfdsmlp.experiments.ps_scale",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="Directory for the data, logs and "
                   "ps_scale.json (reused data is kept).")
    p.add_argument("--cases", default="parameter_server:50000000,"
                   "parameter_server:5000000,default:5000000",
                   help="Comma-separated strategy:ids cases, strategy "
                   "parameter_server or default, ids the table rows in all. "
                   "Default: %(default)s.")
    p.add_argument("--ps", type=int, default=4,
                   help="Parameter servers. Default: %(default)s.")
    p.add_argument("--workers", type=int, default=2,
                   help="Workers. Default: %(default)s.")
    p.add_argument("--dim", type=int, default=16,
                   help="Embedding dimension. Default: %(default)s.")
    p.add_argument("--model", default="gdcn",
                   help="Model name (tfdsmlp.models). Default: %(default)s.")
    p.add_argument("--params", default='{"hidden_units": [400, 400, 400], '
                   '"num_cross_layers": 3, "dropout": 0.2, "embedding_l2": '
                   '0.00001, "embedding_l2_scope": "batch"}',
                   help="The model's settings as JSON (--dim sets "
                   "embedding_dim). Default: %(default)s.")
    p.add_argument("--optimizer", default="lazy_adam",
                   choices=("adam", "lazy_adam"),
                   help="Default: %(default)s (touches only the batch's "
                   "rows; adam decays every row of the table every step).")
    p.add_argument("--batch", type=int, default=4096,
                   help="Global batch size. Default: %(default)s.")
    p.add_argument("--steps", type=int, default=40,
                   help="Steps per epoch (the data has steps x batch "
                   "training rows). Default: %(default)s.")
    p.add_argument("--epochs", type=int, default=3,
                   help="Epochs per case; the first is not timed. "
                   "Default: %(default)s.")
    p.add_argument("--steps-per-execution", type=int, default=1,
                   help="Keras steps_per_execution. Default: %(default)s.")
    p.add_argument("--min-shard-rows", type=int, default=65_536,
                   help="Variables with at least this many rows are split "
                   "over the parameter servers. Default: %(default)s.")
    p.add_argument("--settle", type=float, default=5.0,
                   help="Seconds for the servers to start before the "
                   "coordinator. Default: %(default)s.")
    p.add_argument("--coordinator", metavar="CASE.json",
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.coordinator:
        _coordinate(args.coordinator)
        return 0
    if not args.out:
        p.error("--out is required")
    if args.epochs < 2:
        p.error("--epochs should be >= 2 (the first epoch is not timed)")
    cases = []
    for item in args.cases.split(","):
        strategy, _, ids = item.partition(":")
        if strategy not in ("parameter_server", "default") or not ids.isdigit():
            p.error(f"--cases: {item!r} is not strategy:ids with strategy "
                    "parameter_server or default (e.g. parameter_server:"
                    "50000000)")
        cases.append((strategy, int(ids)))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "ps_scale.json")
    results = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            results = json.load(f)["cases"]
    done = {r["case"] for r in results}
    for n, (strategy, ids) in enumerate(cases, 1):
        name = f"{strategy}_{ids}"
        if name in done:
            print(f"[ps_scale] {name}: measured already in {path}")
            continue
        data = dataset(args.out, args.steps * args.batch, args.batch)
        print(f"[ps_scale] case {n}/{len(cases)}: {name}", flush=True)
        results.append(run_case(args.out, name, strategy, ids, data, args))
        print(json.dumps({k: v for k, v in results[-1].items()
                          if k != "shards"}), flush=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"settings": {k: v for k, v in vars(args).items()
                                    if k != "coordinator"},
                       "cases": results}, f, indent=1)
    print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
