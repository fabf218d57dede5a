"""Helpers of the tuning tests: tiny settings and a dataset without its
test split (so a study that read it would fail)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import optuna
from tiny_data import REPO_ROOT

# Tiny trials (a few thousand parameters, 10 steps per epoch): width and
# depth and the embedding width are fixed, so the study searches the
# learning rate, embedding L2, dropout and cross depth.
TINY_TUNE = ["train.epochs=2", "train.batch_size=32",
             "train.shuffle_buffer=1000", "params.hidden_units=[16]",
             "params.embedding_dim=4"]


def without_test_split(data_dir: str, out: str) -> str:
    """A copy of `data_dir` whose test TFRecord files are gone (dataset.json
    and so the dataset's fingerprint unchanged)."""
    shutil.copytree(data_dir, out)
    shutil.rmtree(os.path.join(out, "test"))
    return out


def load(out: str) -> optuna.Study:
    return optuna.load_study(
        study_name="tfdsmlp-tune",
        storage="sqlite:///" + os.path.join(os.path.abspath(out),
                                            "study.db"))


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def read(*parts: str) -> str:
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return f.read()


def run_tune(args: list[str], sets: list[str], timeout: float = 300,
             **env: str) -> subprocess.CompletedProcess:
    """`python -m tfdsmlp tune ARGS --set ...` in a subprocess, with `env`
    added (TFDSMLP_FAULT_INJECT only where given)."""
    cmd = [sys.executable, "-m", "tfdsmlp", "tune", *args]
    for kv in sets:
        cmd += ["--set", kv]
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                    PYTHONPATH=os.pathsep.join(
                        [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    full_env.pop("TFDSMLP_FAULT_INJECT", None)
    full_env.update(env)
    return subprocess.run(cmd, cwd=str(REPO_ROOT), env=full_env,
                          capture_output=True, text=True, timeout=timeout)
