"""`--strategy multiworker`: 2 worker processes on 127.0.0.1 (loopback only)
run a short DS-MLP job (teacher, distillation, alignment) under
MultiWorkerMirroredStrategy and end where a single process with the same
global batch ends; only the chief writes into the run directory.

Data: `data_tools synth` (it writes the vocabularies an export needs) with
its training split re-written as 2 files, so each worker reads one (file
sharding) with half of the global batch of 64. The single-process
reference reads the same global batches: 32 records of each file
(interleave block 32), no record shuffle
(shuffle_buffer 1), so batch k holds the same 64 examples in both runs and
only the order of floating-point sums differs. Batch norm off (it uses
per-replica batch statistics) and dropout 0 (masks differ per replica), as
in mirrored_check.py.

Tolerances asserted: weights 1e-5, AUC / logloss 1e-6 (measured: weights
within 3e-8, AUC equal, logloss within 1e-9).
"""

import glob
import json
import os
import subprocess
import sys

import tfdsmlp  # noqa: F401
from tfdsmlp.data import reader
from tfdsmlp.training.parameter_server import free_ports

import numpy as np
import pytest
import tensorflow as tf
from tiny_data import REPO_ROOT

SETS = [
    "teacher.params.hidden_units=[16]", "teacher.params.num_cross_layers=1",
    "teacher.params.dropout=0", "teacher.params.batch_norm=false",
    "student.params.main_hidden_units=[16]",
    "student.params.parallel_hidden_units=[8]",
    "student.params.dropout=0", "student.params.batch_norm=false",
    "teacher.train.epochs=1", "distill.train.epochs=2",
    "align.train.epochs=1",
] + [f"{phase}.train.{key}" for phase in ("teacher", "distill", "align")
     for key in ("batch_size=64", "shuffle_buffer=1",
                 # one epoch of a tiny model: too short to beat the base rate
                 "check_learned=false")]
PHASES = ("teacher", "distill", "align")


def _weights(prefix):
    ckpt = tf.train.load_checkpoint(prefix)
    return {k: ckpt.get_tensor(k) for k in ckpt.get_variable_to_shape_map()
            if not k.startswith("_CHECKPOINTABLE")}


def _leaves(tree, path=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, f"{path}/{k}")
    elif isinstance(tree, float):
        yield path, tree


@pytest.fixture(scope="module")
def two_file_dataset(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synth") / "data")
    done = subprocess.run(
        [sys.executable, "-m", "data_tools", "synth", "--out", out,
         "--rows", "320", "--valid-rows", "96", "--test-rows", "96",
         "--vocab-size", "10"], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(os.path.join(out, "dataset.json")) as f:
        meta = json.load(f)
    (single,) = meta["splits"]["train"]["files"]
    records = list(tf.data.TFRecordDataset(os.path.join(out, single)))
    os.remove(os.path.join(out, single))
    files = []
    for k, part in enumerate((records[:160], records[160:])):
        files.append(f"train/part-{k:05d}.tfrecord")
        with tf.io.TFRecordWriter(os.path.join(out, files[-1])) as w:
            for r in part:
                w.write(r.numpy())
    meta["splits"]["train"]["files"] = files
    with open(os.path.join(out, "dataset.json"), "w") as f:
        json.dump(meta, f)
    return out


def test_two_workers_match_one_process(two_file_dataset, tmp_path,
                                       monkeypatch):
    data_dir = two_file_dataset
    run_dir = tmp_path / "mw"
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    args = [sys.executable, "-m", "tfdsmlp", "run", "--data", data_dir,
            "--preset", "synthetic", "--teacher", "gdcn", "--out",
            str(run_dir), "--strategy", "multiworker", "--quiet",
            "--export-name", "mw"]
    for kv in SETS:
        args += ["--set", kv]
    procs, logs = [], []
    try:
        for i in range(2):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                       PYTHONPATH=str(REPO_ROOT), TF_CONFIG=json.dumps(
                           {"cluster": cluster,
                            "task": {"type": "worker", "index": i}}))
            env.pop("TFDSMLP_FAULT_INJECT", None)
            # closed after the workers end
            logs.append(open(tmp_path / f"worker{i}.log", "w"))  # noqa: SIM115
            # Same working directory: both would export to saved_models/.
            procs.append(subprocess.Popen(args, cwd=tmp_path, env=env,
                                          stdout=logs[-1],
                                          stderr=subprocess.STDOUT))
        for p in procs:
            p.wait(timeout=240)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
    for i, p in enumerate(procs):
        text = (tmp_path / f"worker{i}.log").read_text()
        assert p.returncode == 0, text[-4000:]
        assert "dsmlp_parallel" in text  # both printed the final table

    # Only the chief (worker 0) wrote: TensorBoard files carry the writing
    # process id; one export version; no worker temp dirs left behind.
    events = glob.glob(str(run_dir / "tb" / "**" / "events.*"),
                       recursive=True)
    assert events and {os.path.basename(e).split(".")[-3] for e in events} \
        == {str(procs[0].pid)}
    assert os.listdir(tmp_path / "saved_models" / "mw") == ["1"]
    assert os.listdir(tmp_path / "saved_models" / "mw_teacher") == ["1"]
    names = [os.path.relpath(p, run_dir) for p in
             glob.glob(str(run_dir / "**"), recursive=True)]
    assert not [n for n in names if "temp" in n or "tmp" in n], names
    for phase in PHASES:
        assert (run_dir / phase / "done.json").exists()
        assert not (run_dir / phase / "backup").exists()

    # The single-process reference with the same global batches.
    from tfdsmlp.training.pipeline import run_dsmlp
    from tfdsmlp.training.presets import build_run_config

    monkeypatch.setattr(reader, "INTERLEAVE_BLOCK", 32)
    ref_dir = tmp_path / "single"
    ref = run_dsmlp(data_dir,
                    build_run_config("synthetic", "gdcn", overrides=SETS),
                    str(ref_dir), strategy="default", verbose=0)
    ref = ref.metrics
    with open(run_dir / "metrics.json") as f:
        multi = json.load(f)
    ref_leaves = dict(_leaves(ref["phases"]))
    for path, value in _leaves(multi["phases"]):
        if path.endswith(("/auc", "/logloss")):
            print(f"{path}: |multi - single| = "
                  f"{abs(value - ref_leaves[path]):.2e}")
            assert value == pytest.approx(ref_leaves[path], abs=1e-6), path
    for phase in PHASES:
        a = _weights(str(run_dir / phase / "weights" / "model"))
        b = _weights(str(ref_dir / phase / "weights" / "model"))
        assert set(a) == set(b)
        diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
        print(f"{phase} weights: max |multi - single| = {diff:.2e}")
        assert diff < 1e-5, (phase, diff)
