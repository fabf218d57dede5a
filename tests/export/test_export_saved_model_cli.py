"""`saved_model_cli show --all` and `saved_model_cli run` (TensorFlow's own
tool, a TF1 session like TF Serving's) on every signature."""

from __future__ import annotations

import os
import subprocess
import sys

from tfdsmlp.export import SIGNATURES

import numpy as np
import pytest

CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
ROWS = 3


def _env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # seven TensorFlow processes at once on a small machine
    env["TF_NUM_INTRAOP_THREADS"] = env["TF_NUM_INTEROP_THREADS"] = "1"
    return env


def _literal(rows, name):
    return repr([r[name] for r in rows])


@pytest.fixture(scope="module")
def cli_runs(exported, test_rows, tmp_path_factory):
    """Runs `show --all` and one `run` per signature, all at once (each is
    a separate TensorFlow process); returns {key: (proc result, outdir)}."""
    if not os.path.exists(CLI):
        pytest.skip(f"{CLI} not found (ships with the tensorflow wheel)")
    path = exported["dsmlp"]
    rows = test_rows.rows(ROWS)
    raw = ";".join(f"{i.name}={_literal(rows, i.name)}"
                   for i in test_rows.inputs)
    examples = repr([{k: [v] for k, v in r.items()} for r in rows])
    indexed = (f"ids={test_rows.ids[:ROWS].tolist()!r};"
               f"dense={test_rows.dense[:ROWS].tolist()!r}")
    feeds = {
        "serving_default": ["--input_exprs", raw],
        "preprocess": ["--input_exprs", raw],
        "predict_indexed": ["--input_exprs", indexed],
        "predict_examples": ["--input_examples", f"examples={examples}"],
        "classify": ["--input_examples", f"inputs={examples}"],
        "regress": ["--input_examples", f"inputs={examples}"],
    }
    assert set(feeds) == set(SIGNATURES)
    base = tmp_path_factory.mktemp("saved_model_cli")
    procs = {"show": (subprocess.Popen(
        [CLI, "show", "--dir", path, "--all"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=_env()), None)}
    for sig, feed in feeds.items():
        out = str(base / sig)
        procs[sig] = (subprocess.Popen(
            [CLI, "run", "--dir", path, "--tag_set", "serve",
             "--signature_def", sig, *feed, "--outdir", out],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env()), out)
    results = {}
    for key, (proc, out) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        results[key] = (proc.returncode, stdout, stderr, out)
    return results


def test_show_all_lists_every_signature_and_method(cli_runs):
    rc, out, err, _ = cli_runs["show"]
    assert rc == 0, err[-2000:]
    for sig in SIGNATURES:
        assert f"signature_def['{sig}']:" in out
    assert "Method name is: tensorflow/serving/classify" in out
    assert "Method name is: tensorflow/serving/regress" in out
    assert "inputs['c0'] tensor_info:" in out
    assert "inputs['examples'] tensor_info:" in out
    assert "outputs['probability'] tensor_info:" in out


@pytest.mark.parametrize("sig", SIGNATURES)
def test_run_every_signature(cli_runs, sig, servable, test_rows):
    rc, _out, err, outdir = cli_runs[sig]
    assert rc == 0, err[-3000:]
    expected = {
        "serving_default": lambda: servable.call(
            sig, test_rows.take(range(ROWS)).arrays()),
        "preprocess": lambda: servable.call(
            sig, test_rows.take(range(ROWS)).arrays()),
        "predict_indexed": lambda: servable.call(sig, {
            "ids": test_rows.ids[:ROWS], "dense": test_rows.dense[:ROWS]}),
    }
    if sig in expected:
        want = expected[sig]()
    else:
        from tfdsmlp.export.serving_requests import serialized_examples

        key = "examples" if sig == "predict_examples" else "inputs"
        want = servable.call(sig, {key: serialized_examples(
            test_rows.rows(ROWS), test_rows.inputs)})
    for name, value in want.items():
        got = np.load(os.path.join(outdir, f"{name}.npy"), allow_pickle=True)
        assert got.shape == value.shape, (name, got.shape, value.shape)
        if value.dtype == object:
            assert got.tolist() == value.tolist()
        else:
            np.testing.assert_allclose(got, value, atol=1e-5)
