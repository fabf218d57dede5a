"""`bench --peer fuxictr`: the inputs both sides read, the ratios, the
errors; the FuxiCTR side itself only where the peer environment exists
(`make peer`), since it is never a dependency of the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import tfdsmlp  # noqa: F401
from tfdsmlp.features import FeatureSpec
from tfdsmlp.peer import runner, tf_side

import numpy as np
import pytest

PEER_PYTHON = os.path.join(os.path.dirname(__file__), "..", "..",
                           ".venv-peer", "bin", "python")


@pytest.fixture(scope="module")
def peer_spec(synth_data, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("peer"))
    return tf_side.write_inputs(synth_data, "synthetic",
                                ("dnn", "gdcn", "dcnv2", "finalmlp",
                                 "dsmlp"),
                                batch_size=64, num_batches=3, out_dir=out)


def test_inputs_hold_the_batches_and_resolved_settings(peer_spec, synth_data):
    with open(peer_spec, encoding="utf-8") as f:
        spec = json.load(f)
    arrays = np.load(spec["batches"])
    assert arrays["ids"].shape == (192, 6)
    assert arrays["dense"].shape == (192, 1)
    assert set(np.unique(arrays["labels"])) <= {0.0, 1.0}
    assert int(arrays["batch_size"]) == 64
    data_spec = FeatureSpec.from_dataset_dir(synth_data)
    assert spec["vocab_sizes"] == list(data_spec.vocab_sizes)
    assert spec["num_numeric"] == data_spec.num_numeric == 1
    dsmlp = spec["models"]["dsmlp"]
    # the shared MLP settings are spelt per stream for the peer
    assert dsmlp["main_dropout"] == dsmlp["dropout"]
    assert dsmlp["parallel_batch_norm"] == dsmlp["batch_norm"]
    assert all(isinstance(i, int)
               for i in spec["models"]["finalmlp"]["fs1_context"])


def test_ratio_is_the_median_of_per_round_ratios():
    def side(train, infer, p50):
        return {"train_examples_per_s": train, "infer_examples_per_s": infer,
                "batch1_p50_ms": p50}
    rounds = [{"dnn": {"tfdsmlp": side(200, 100, 1.0),
                       "fuxictr:dnn": side(100, 100, 2.0)}},
              {"dnn": {"tfdsmlp": side(300, 100, 1.0),
                       "fuxictr:dnn": side(100, 50, 1.0)}},
              {"dnn": {"tfdsmlp": side(100, 100, 4.0),
                       "fuxictr:dnn": side(100, 100, 2.0)}}]
    r = runner.ratios(rounds)["dnn vs fuxictr:dnn"]
    assert r["train_examples_per_s"] == 2.0      # median of 2, 3, 1
    assert r["infer_examples_per_s"] == 1.0      # median of 1, 2, 1
    assert r["batch1_p50_ms"] == 1.0             # peer / ours: 2, 1, 0.5


def test_missing_peer_environment_says_how_to_make_it(tmp_path):
    with pytest.raises(runner.PeerError, match="make peer"):
        runner.check_peer_python(str(tmp_path / "nope" / "python"))


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="no peer model for.*autoint"):
        runner.PeerBenchConfig(data_dir="x", models=("dnn", "autoint"))


def _tf_side(spec: str, model: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tfdsmlp.peer.tf_side", "--spec", spec,
         "--model", model, "--steps", "2", "--passes", "1",
         "--repeats", "5"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tf_side_times_a_model(peer_spec):
    result = _tf_side(peer_spec, "dnn")
    for key in runner.METRICS:
        assert result[key] > 0


@pytest.mark.skipif(not os.path.exists(PEER_PYTHON),
                    reason="no peer environment (.venv-peer): `make peer` "
                           "installs FuxiCTR and the PyTorch CPU build")
@pytest.mark.parametrize("model", ["dnn", "gdcn", "dcnv2",
                                   "finalmlp_einsum", "dsmlp"])
def test_fuxictr_side_times_the_same_model(peer_spec, model):
    out = subprocess.run(
        [PEER_PYTHON, runner.PEER_SCRIPT, "--spec", peer_spec, "--model",
         model, "--steps", "2", "--passes", "1", "--repeats", "5"],
        capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["library"].startswith("fuxictr 2.3.10")
    for key in runner.METRICS:
        assert result[key] > 0
    # the same architecture: as many trainable weights on both sides
    ours = _tf_side(peer_spec, model.removesuffix("_einsum"))
    assert result["trainable_params"] == ours["trainable_params"]


def test_models_are_exported_and_timed_in_the_cpp_path(peer_spec, tmp_path):
    from tfdsmlp.serving_bench import harness

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("the C serving harness needs a C compiler")
    exports = tf_side.export_models(peer_spec, ("dnn",), str(tmp_path))
    assert set(exports["dnn"]) == {"plain", "xla"}
    cfg = runner.PeerBenchConfig(data_dir="unused", models=("dnn",),
                                 batch_size=64, repeats=5)
    timer = harness.build_timer(str(tmp_path / "build"))
    rows = harness.IndexedRows.from_batches(peer_spec)
    figures = runner._cpp_figures(timer, exports["dnn"], rows, cfg)
    assert set(figures) == {k for k in runner.ALTERNATIVES
                            if k.startswith("cpp_")}
    assert all(v > 0 for v in figures.values())
