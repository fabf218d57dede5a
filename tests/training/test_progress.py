"""Per-batch progress under several replicas shows the quantities of the
epoch line (Keras summed them over replicas: AUC above 1)."""

import json
import os
import subprocess
import sys

import pytest


def test_batch_logs_are_not_summed_over_replicas(tiny_dataset_dir):
    script = os.path.join(os.path.dirname(__file__), "progress_check.py")
    out = subprocess.run([sys.executable, script, tiny_dataset_dir],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for name, logs in result.items():
        for batch in logs["batches"]:
            assert 0.0 <= batch["auc"] <= 1.0, (name, batch)
        # The last batch of an epoch shows about the epoch's values (one
        # replica's running means against the synced ones), not N times.
        last = logs["batches"][4]
        epoch = logs["epochs"][0]
        assert last["loss"] == pytest.approx(epoch["loss"], rel=0.3), name
        assert last["auc"] == pytest.approx(epoch["auc"], abs=0.15), name
