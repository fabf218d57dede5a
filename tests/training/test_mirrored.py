"""MirroredStrategy on 2 logical CPUs matches one device (same seed), also
when the batch does not divide the training rows (see mirrored_check.py)."""

import json
import os
import subprocess
import sys

import numpy as np


def test_mirrored_distillation_matches_single_device(tiny_dataset_dir):
    script = os.path.join(os.path.dirname(__file__), "mirrored_check.py")
    out = subprocess.run([sys.executable, script, tiny_dataset_dir],
                         capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["max_weight_diff"] < 1e-5, result["max_weight_diff"]
    assert result["max_weight_diff_in_memory"] < 1e-5, result[
        "max_weight_diff_in_memory"]
    for key in ("loss", "ctr_loss", "kd_loss", "reg_loss"):
        np.testing.assert_allclose(result["mirrored"][key],
                                   result["single"][key], atol=1e-5)
    # Batch 48 over 320 rows: a smaller last batch on one device, a padded
    # zero-weight last step on two replicas; same weights, every row seen.
    for kind, diff in result["max_weight_diff_partial"].items():
        assert diff < 1e-5, (kind, diff)
    assert result["partial_epoch_rows_once"] == {"tfrecord": True,
                                                 "in_memory": True}
