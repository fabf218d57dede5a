"""The tfdsmlp side of `bench --peer fuxictr`: inputs for both, and timing.

`write_inputs` writes, once per bench, the batches both libraries train on
(`batches.npz`: the first `n` training batches of the dataset, ids, numeric
values and labels) and `spec.json` (vocabulary sizes, learning rate, each
model's resolved settings), so the two sides see the same examples, shapes
and hyper-parameters. `python -m tfdsmlp.peer.tf_side --spec S --model M`
then times one tfdsmlp model on them exactly as `fuxictr_peer.py` times
FuxiCTR's: training examples/s (best of `--passes` passes of `--steps`
steps after a warm-up, `model.fit` compiled as `tfdsmlp train` compiles it)
and in-process inference at the batch size (examples/s) and at batch 1
(p50 / p99 ms), as a plain `tf.function` and XLA-compiled (`xla_*`: what
`export --jit-compile` serves), printing one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import tfdsmlp
from tfdsmlp.bench import latency, train_rate
from tfdsmlp.config import to_dict
from tfdsmlp.data.reader import make_dataset
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.registry import build_model
from tfdsmlp.training.fit import compile_ctr_model
from tfdsmlp.training.precision import precision_policy
from tfdsmlp.training.presets import load_preset, model_preset
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import tensorflow as tf

# The peer's model for a tfdsmlp model: FinalMLP is compared with
# FuxiCTR's zoo fusion and with the einsum fusion (the fair peer).
PEERS = {"finalmlp": ("finalmlp", "finalmlp_einsum")}
MODELS = ("dnn", "deepfm", "dcnv2", "gdcn", "finalmlp", "xdeepfm", "dsmlp")


def peer_params(model: tf.keras.Model) -> dict:
    """The model's resolved settings, with the DS-MLP's shared MLP settings
    spelt per stream (the peer builds each MLP from prefixed keys)."""
    params = to_dict(model.config)
    if hasattr(model.config, "main_mlp"):
        for stream in ("main", "parallel"):
            mlp = getattr(model.config, f"{stream}_mlp")
            params.update({f"{stream}_{f.name}": getattr(mlp, f.name)
                           for f in dataclasses.fields(mlp)})
    return json.loads(json.dumps(params, default=list))


def write_inputs(data_dir: str, preset: str, models: tuple[str, ...],
                 batch_size: int, num_batches: int, out_dir: str) -> str:
    """Writes batches.npz and spec.json into `out_dir`; returns the spec's
    path."""
    data = DatasetDir.open(data_dir)
    spec = data.spec
    ds = make_dataset(data_dir, "train", batch_size, repeat=True, seed=0)
    ids, dense, labels = [], [], []
    for x, y in ds.take(num_batches):
        ids.append(x["ids"].numpy())
        dense.append(x["dense"].numpy() if "dense" in x
                     else np.zeros((batch_size, 0), np.float32))
        labels.append(np.reshape(y.numpy(), [-1]).astype(np.float32))
    os.makedirs(out_dir, exist_ok=True)
    batches = os.path.join(out_dir, "batches.npz")
    np.savez(batches, ids=np.concatenate(ids).astype(np.int64),
             dense=np.concatenate(dense).astype(np.float32),
             labels=np.concatenate(labels), batch_size=batch_size)
    train = load_preset(preset).get("train", {})
    params = {}
    for name in models:
        model = build_model(name, model_preset(preset, name)["params"], spec)
        params[name] = peer_params(model)
    out = {"data": os.path.abspath(data_dir), "preset": preset,
           "vocab_sizes": list(spec.vocab_sizes),
           "num_numeric": spec.num_numeric, "batch_size": batch_size,
           "lr": float(train.get("learning_rate", 1e-3)),
           "steps_per_execution": int(train.get("steps_per_execution", 1)),
           "batches": os.path.abspath(batches), "models": params}
    path = os.path.join(out_dir, "spec.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    return path


def read_spec(path: str) -> dict:
    """The spec.json that `write_inputs` wrote."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def build_timed_model(spec: dict, name: str, feature_spec: FeatureSpec,
                      precision: str = "float32") -> tf.keras.Model:
    """Model `name` with the spec preset's settings and seed-0 weights,
    built (and called once, so its sublayers exist) under `precision`."""
    tf.keras.utils.set_random_seed(0)
    with precision_policy(precision):  # sublayers are built by the call
        model = build_model(name, model_preset(spec["preset"], name)[
            "params"], feature_spec)
        model(model.dummy_inputs())
    return model


def forward_flops(model: tf.keras.Model, spec: dict) -> int:
    """Floating-point operations of one example's forward pass (TF's
    graph profiler over the inference graph at batch 1: matmuls, element-
    wise ops; a training step costs about 3 times as much)."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    inputs = {"ids": tf.TensorSpec([1, len(spec["vocab_sizes"])], tf.int64)}
    if spec["num_numeric"]:
        inputs["dense"] = tf.TensorSpec([1, spec["num_numeric"]], tf.float32)
    fn = tf.function(lambda x: model(x, training=False), autograph=False)
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    graph = fn.get_concrete_function(inputs).graph
    return int(model_analyzer.profile(graph, options=opts).total_float_ops)


def matmul_peak(dtype: str = "float32", n: int = 2048) -> float:
    """GFLOP/s of an n x n x n matmul in this process (best of 3 x 5): the
    compute limit the training rates are read against."""
    a = tf.cast(tf.random.normal([n, n]), dtype)
    fn = tf.function(lambda x: tf.matmul(x, x))
    fn(a).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(5):
            out = fn(a)
        out.numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 * 5 / best / 1e9


def export_models(spec_path: str, models: tuple[str, ...], out_dir: str,
                  precision: str = "float32") -> dict[str, dict[str, str]]:
    """Exports each model of the spec (its preset settings, fresh weights:
    serving cost does not depend on their values), computing in
    `precision` (as `export --precision`), twice, plain and with
    `jit_compile`; returns {model: {"plain": dir, "xla": dir}}."""
    import warnings

    from tfdsmlp.export.saved_model import export_saved_model

    spec = read_spec(spec_path)
    feature_spec = FeatureSpec.from_dataset_dir(spec["data"])
    out: dict[str, dict[str, str]] = {}
    for name in models:
        model = build_timed_model(spec, name, feature_spec, precision)
        out[name] = {}
        for kind in ("plain", "xla"):
            with warnings.catch_warnings():  # only predict_indexed is timed
                warnings.simplefilter("ignore", UserWarning)
                out[name][kind] = export_saved_model(
                    model, feature_spec, out_dir, f"{name}_{kind}", 1,
                    warmup=False, jit_compile=kind == "xla")
    return out


def measure(spec_path: str, name: str, steps: int, passes: int,
            repeats: int, jit_compile: bool = False,
            precision: str = "float32") -> dict:
    """Times model `name` of the spec (see the module docstring)."""
    start = time.perf_counter()
    spec = read_spec(spec_path)
    arrays = np.load(spec["batches"])
    batch = int(arrays["batch_size"])
    x = {"ids": arrays["ids"]}
    if spec["num_numeric"]:
        x["dense"] = arrays["dense"]
    data = tf.data.Dataset.from_tensor_slices(
        (x, arrays["labels"].reshape(-1, 1))).batch(batch).cache().repeat()
    model = build_timed_model(spec, name,
                              FeatureSpec.from_dataset_dir(spec["data"]),
                              precision)
    flops = forward_flops(model, spec)
    cfg = TrainConfig(batch_size=batch, learning_rate=spec["lr"],
                      steps_per_execution=spec["steps_per_execution"],
                      jit_compile=jit_compile, precision=precision)
    compile_ctr_model(model, cfg)
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
    first_step = time.perf_counter() - start
    train = train_rate(model, data, steps, passes,
                       steps_per_execution=spec["steps_per_execution"])
    big = {k: tf.constant(v[:batch]) for k, v in x.items()}
    one = {k: v[:1] for k, v in big.items()}
    infer = {}
    for prefix, jit in (("", jit_compile), ("xla_", True)):
        fn = tf.function(lambda inputs: model(inputs, training=False),
                         jit_compile=jit)
        big_lat = latency(fn, big, max(5, repeats // 20))
        small = latency(fn, one, repeats)
        infer.update({f"{prefix}infer_examples_per_s":
                      batch * 1000.0 / big_lat["p50_ms"],
                      f"{prefix}batch1_p50_ms": small["p50_ms"],
                      f"{prefix}batch1_p99_ms": small["p99_ms"]})
    return {"library": f"tfdsmlp {tfdsmlp.__version__}, tensorflow "
                       f"{tf.__version__}",
            "threads": os.cpu_count(), "jit_compile": jit_compile,
            "precision": precision,
            "trainable_params": int(sum(np.prod(v.shape)
                                        for v in model.trainable_variables)),
            "forward_flops_per_example": flops,
            "train_gflops": 3 * flops * train / 1e9,
            "first_step_s": first_step, "train_examples_per_s": train,
            **infer}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spec", required=True, help="spec.json (write_inputs)")
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--jit-compile", action="store_true",
                   help="XLA-compile the train step and the inference "
                        "function")
    p.add_argument("--precision", default="float32",
                   choices=["float32", "mixed_bfloat16"],
                   help="train.precision of the timed model")
    args = p.parse_args(argv)
    json.dump(measure(args.spec, args.model, args.steps, args.passes,
                      args.repeats, args.jit_compile, args.precision),
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
