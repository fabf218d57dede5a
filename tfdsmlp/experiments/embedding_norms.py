"""python -m tfdsmlp.experiments.embedding_norms --data DIR RUN [RUN ...]

How large a trained model's embedding rows are, by how frequent their id
is: a check of what the optimizer and the embedding L2 did to rare ids
(docs/SCALE.md, section 8). The rows of every categorical field are
grouped by the id's frequency rank within its field: `data_tools convert`
writes each vocabulary sorted by training count, most frequent first, so
id `i + 2` is rank `i` (ids 0 and 1, padding and OOV, are left out). For
each rank group the mean and median L2 norm of the rows, over all
fields, and the share of rows with a norm below 0.01 (near the 1e-4
initial scale, i.e. barely moved or pulled back to zero).

On the planted 10M-row Criteo-shaped data, Keras' Adam with the L2 on the
whole table left the GDCN teacher's rare rows about 2.6 times smaller than
LazyAdam with the L2 on the batch's rows, and its frequent rows as large
or larger: the whole-table L2 regularises an id more the rarer it is.

The embedding tables are the phase's weights of shape (ids of every
categorical field, width): the one fused table of a teacher, the main and
parallel tables of a DS-MLP.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.features import NUM_RESERVED_IDS
from tfdsmlp.run_dir import RunDir

import numpy as np

# Rank groups: [0, 100), [100, 1000), ... ; the last is open.
RANK_EDGES = (0, 100, 1_000, 10_000, 100_000)
NEAR_ZERO = 0.01


@dataclasses.dataclass(frozen=True)
class RankGroup:
    """Norm statistics of the rows of one rank group of one table."""

    low: int
    high: int | None  # None: no upper end
    rows: int
    mean: float
    median: float
    near_zero: float  # share of rows with norm < NEAR_ZERO

    @property
    def label(self) -> str:
        return (f"{self.low:,}+" if self.high is None
                else f"{self.low:,}-{self.high:,}")


def rank_groups(table: np.ndarray, vocab_sizes: list[int],
                edges: tuple[int, ...] = RANK_EDGES) -> list[RankGroup]:
    """Groups the rows of `table` (fields' vocabularies one after another,
    each `vocab_sizes[f]` rows with padding and OOV first) by the rank of
    their id within its field, and gives each group's norm statistics;
    groups without rows are left out."""
    if table.shape[0] != sum(vocab_sizes):
        raise ValueError(
            f"The table has {table.shape[0]} rows but the fields' "
            f"vocabularies {sum(vocab_sizes)}: not this dataset's table.")
    norms = np.linalg.norm(table, axis=1)
    offsets = np.concatenate([[0], np.cumsum(vocab_sizes)[:-1]])
    first = NUM_RESERVED_IDS  # padding and OOV come first
    ranks = np.concatenate([np.arange(size - first) for size in vocab_sizes])
    rows = np.concatenate([norms[off + first: off + size]
                           for off, size in zip(offsets, vocab_sizes)])
    out = []
    for low, high in zip(edges, (*edges[1:], None)):
        chosen = rows[(ranks >= low) & ((ranks < high) if high else True)]
        if chosen.size:
            out.append(RankGroup(low, high, int(chosen.size),
                                 float(chosen.mean()),
                                 float(np.median(chosen)),
                                 float(np.mean(chosen < NEAR_ZERO))))
    return out


def embedding_tables(run: str, phase: str, data: DatasetDir
                     ) -> dict[str, np.ndarray]:
    """{checkpoint key: table} of the phase's weights whose shape is
    (ids of `data`'s categorical fields, width); the run must have trained
    on `data` (its recorded dataset fingerprint)."""
    import tensorflow as tf

    run_dir = RunDir.open(run)
    theirs = run_dir.read_config().get("dataset_fingerprint")
    if theirs != data.fingerprint:
        raise ValueError(f"{run} trained on another dataset (fingerprint "
                         f"{theirs}) than --data {data.path} "
                         f"({data.fingerprint}); give the run's dataset.")
    total_ids = sum(data.spec.vocab_sizes)
    if not run_dir.has_weights(phase):
        raise ValueError(f"{run}: no finished `{phase}` phase with weights "
                         f"(phases done: {run_dir.done_phases()}).")
    reader = tf.train.load_checkpoint(run_dir.weights_prefix(phase))
    keys = sorted(k for k, shape in reader.get_variable_to_shape_map().items()
                  if len(shape) == 2 and shape[0] == total_ids
                  and "OPTIMIZER_SLOT" not in k and "optimizer" not in k)
    if not keys:
        raise ValueError(f"{run}: the `{phase}` weights hold no embedding "
                         f"table of {total_ids} rows.")
    return {k: reader.get_tensor(k) for k in keys}


def markdown(results: dict[str, list[RankGroup]]) -> str:
    """One table: a line per (table, rank group)."""
    header = ("| table | id rank in its field | rows | mean norm | "
              f"median norm | share < {NEAR_ZERO} |")
    lines = [header, "|---|---|---|---|---|---|"]
    for name, groups in results.items():
        lines += [f"| {name} | {g.label} | {g.rows:,} | {g.mean:.4f} | "
                  f"{g.median:.4f} | {g.near_zero:.3f} |" for g in groups]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfdsmlp.experiments.embedding_norms",
        description="Mean and median L2 norm of trained embedding rows by "
                    "the id's frequency rank within its field.")
    parser.add_argument("--data", required=True,
                        help="the dataset directory the runs trained on "
                             "(its dataset.json gives the fields' "
                             "vocabulary sizes)")
    parser.add_argument("--phase", default="teacher",
                        choices=("teacher", "distill", "align"),
                        help="whose weights (default: teacher)")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories (`train` / `run --out`)")
    args = parser.parse_args(argv)
    try:
        data = DatasetDir.open(args.data)
        sizes = list(data.spec.vocab_sizes)
        results = {}
        for run in args.runs:
            for key, table in embedding_tables(run, args.phase,
                                               data).items():
                name = f"{run} {key.split('/.ATTRIBUTES')[0]}"
                results[name] = rank_groups(table, sizes)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
