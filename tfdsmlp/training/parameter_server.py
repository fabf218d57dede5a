"""ParameterServerStrategy: embedding tables sharded by rows over hosts.

Under `MultiWorkerMirroredStrategy` every worker holds every table and
its optimizer slots. With `--strategy parameter_server` the tables live on
parameter servers instead, split by rows (`RowPartitioner`): a table of R
rows over P servers is P `ShardedVariable` blocks of about R / P rows, and
Adam's two slots are split the same way, so a server holds 3 R D / P
floats of each D-wide table. MLP and cross weights (fewer rows than
`min_shard_rows`) stay whole, each on one server. Each worker runs steps
that the coordinator (TF_CONFIG task `chief`, the process that runs
`python -m tfdsmlp run`) schedules; a step fetches only the table rows of
its batch (`tf.nn.embedding_lookup` on the shards) and sends back their
gradients, so the traffic per step grows with the batch, not the table.

Cluster (docs/SCALING.md, section 3): every process gets TF_CONFIG with the
same `cluster` ({"chief": [...], "worker": [...], "ps": [...]}) and its own
`task`; workers and parameter servers run `python -m tfdsmlp
serve-cluster-task` (`serve_task`), which serves until killed.

Training under it is asynchronous: each worker applies its gradients
without waiting for the others, so results differ from one process's
within the noise of the seed, not bit for bit.
"""

from __future__ import annotations

import json
import os
import socket

import tfdsmlp  # noqa: F401

import tensorflow as tf

# Variables with at least this many rows are split over the parameter
# servers: embedding tables (one row per id of every field) but not MLP or
# cross weights, whose rows are input widths (at most a few thousand).
MIN_SHARD_ROWS = 65_536


class RowPartitioner(tf.distribute.experimental.partitioners.Partitioner):
    """Splits a variable of at least `min_rows` rows into `num_shards`
    blocks of rows (fewer when it has fewer rows); smaller ones stay whole.

    Args:
      num_shards: int >= 1. Blocks per large variable (the parameter
        servers).
      min_rows: int >= 1. Rows from which a variable is split.
    """

    def __init__(self, num_shards: int, min_rows: int = MIN_SHARD_ROWS):
        if num_shards < 1 or min_rows < 1:
            raise ValueError("`num_shards` and `min_rows` should be >= 1. "
                             f"Received: `num_shards={num_shards}`, "
                             f"`min_rows={min_rows}`")
        self.num_shards = num_shards
        self.min_rows = min_rows

    def __call__(self, shape, dtype, axis=0):
        shape = tf.TensorShape(shape)
        parts = [1] * shape.rank
        if shape.rank and shape[axis] >= self.min_rows:
            parts[axis] = min(self.num_shards, shape[axis])
        return parts


def cluster_config() -> tuple[dict[str, list[str]], str | None, int]:
    """(cluster, task type, task index) from TF_CONFIG (error naming what
    is missing)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "TF_CONFIG is not set: a parameter-server cluster needs it in "
            "every process, e.g. TF_CONFIG='{\"cluster\": {\"chief\": "
            "[\"host0:2222\"], \"worker\": [\"host1:2222\"], \"ps\": "
            "[\"host2:2222\"]}, \"task\": {\"type\": \"chief\", \"index\": "
            "0}}' (docs/SCALING.md, section 3).")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    return cluster, task.get("type"), int(task.get("index", 0))


def parameter_server_strategy(min_shard_rows: int = MIN_SHARD_ROWS
                              ) -> tf.distribute.Strategy:
    """`ParameterServerStrategy` from TF_CONFIG for the coordinator (task
    `chief`), tables split by `RowPartitioner` over every `ps` task."""
    cluster, task_type, _ = cluster_config()
    missing = [job for job in ("chief", "worker", "ps")
               if not cluster.get(job)]
    if missing:
        raise ValueError(
            f"--strategy parameter_server: TF_CONFIG's cluster has no "
            f"{' / '.join(missing)} task(s). It needs one `chief` (this "
            "process, the coordinator), at least one `worker` and one `ps` "
            "(docs/SCALING.md, section 3).")
    if task_type != "chief":
        raise ValueError(
            f"--strategy parameter_server runs on the `chief` task (the "
            f"coordinator); this process is TF_CONFIG task {task_type!r}. "
            "Workers and parameter servers run `python -m tfdsmlp "
            "serve-cluster-task`.")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=RowPartitioner(len(cluster["ps"]),
                                                      min_shard_rows))


def free_ports(n: int) -> list[int]:
    """n TCP ports free on 127.0.0.1 now, for a cluster on one host
    (loopback tests and `tfdsmlp.experiments.ps_scale`)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def is_parameter_server(strategy: tf.distribute.Strategy | None) -> bool:
    return isinstance(strategy,
                      tf.distribute.experimental.ParameterServerStrategy)


def server_config(num_workers: int) -> tf.compat.v1.ConfigProto:
    """Session config of a worker or parameter server: enough inter-op
    threads that a step waiting on remote reads cannot hold every thread
    (TensorFlow's advice for small hosts; with 2 cores and the default of
    one thread per core the cluster stalls)."""
    config = tf.compat.v1.ConfigProto()
    config.inter_op_parallelism_threads = max(
        num_workers + 1, os.cpu_count() or 1)
    return config


def serve_task(log=print) -> None:
    """Runs this process's `worker` or `ps` task of TF_CONFIG's cluster
    until it is killed (`python -m tfdsmlp serve-cluster-task`)."""
    cluster, task_type, index = cluster_config()
    if task_type not in ("worker", "ps"):
        raise ValueError(
            f"serve-cluster-task serves a `worker` or `ps` task; TF_CONFIG "
            f"names task {task_type!r}. The `chief` runs the job itself "
            "(`python -m tfdsmlp run --strategy parameter_server`).")
    if index >= len(cluster.get(task_type, [])):
        raise ValueError(f"TF_CONFIG task {task_type}:{index} is not in its "
                         f"cluster ({len(cluster.get(task_type, []))} "
                         f"{task_type} task(s)).")
    # The coordinator schedules steps on workers whenever they are free:
    # a restarted worker rejoins, so do not fail on a peer's absence.
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    server = tf.distribute.Server(
        tf.train.ClusterSpec(cluster), job_name=task_type, task_index=index,
        protocol="grpc",
        config=server_config(len(cluster.get("worker", []))), start=True)
    log(f"[cluster] {task_type}:{index} serving at "
        f"{cluster[task_type][index]} ({server.target})", flush=True)
    server.join()


def sharded_variables(model: tf.keras.Model
                      ) -> dict[str, tf.__internal__.distribute.ShardedVariable]:
    """{"<layer>/<attribute>": variable} of the model's row-sharded
    variables (none outside ParameterServerStrategy)."""
    out = {}
    for layer in (model, *model.submodules):
        for attr, value in vars(layer).items():
            if isinstance(value, tf.__internal__.distribute.ShardedVariable):
                out[f"{layer.name}/{attr}"] = value
    return out


def shard_layout(model: tf.keras.Model) -> dict[str, list[list]]:
    """{"<layer>/<attribute>": [[rows, cols, device], ...]} of the model's
    row-sharded variables, shard by shard (for metrics.json)."""
    return {name: [[int(v.shape[0]), int(v.shape[1]) if v.shape.rank > 1
                    else 1, v.device] for v in var.variables]
            for name, var in sharded_variables(model).items()}
