"""Truncated or corrupted TFRecord files: an error naming the file, or with
--skip-corrupt the skipped-record count in the logs and metrics.json; never
a silent partial epoch."""

import json
import logging
import os
import shutil

from tfdsmlp import cli
from tfdsmlp.data import reader, scan
from tfdsmlp.training.fit import fit_ctr_model
from tfdsmlp.training.train_config import TrainConfig

import pytest

TRAIN = ["--set", "params.hidden_units=[16]", "--set", "train.epochs=1",
         "--set", "train.batch_size=64"]


def _copy(src, dst, split, damage):
    shutil.copytree(src, dst)
    path = os.path.join(dst, split, "part-00001.tfrecord" if split == "train"
                        else "part-00000.tfrecord")
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        if damage == "truncate":  # as a copy cut short
            f.truncate(len(data) - 20)
        else:  # one flipped byte in the middle: the record's CRC fails
            data[len(data) // 2] ^= 0xFF
            f.seek(0)
            f.write(bytes(data))
    return str(dst), path


@pytest.fixture
def truncated(tiny_dataset_dir, tmp_path):
    return _copy(tiny_dataset_dir, tmp_path / "data", "train", "truncate")


def _train(data_dir, out, *extra):
    return cli.main(["train", "--data", data_dir, "--model", "dnn",
                     "--preset", "synthetic", "--out", out, "--quiet",
                     *TRAIN, *extra])


def test_truncated_file_is_an_error_naming_it(truncated, tmp_path, capsys):
    data_dir, bad = truncated
    assert _train(data_dir, str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert bad in err and "truncated" in err and "--skip-corrupt" in err
    assert "159 good records" in err  # 160 rows in the shard, last one cut
    assert not os.path.exists(tmp_path / "out" / "metrics.json")


def test_skip_corrupt_reports_the_count(truncated, tmp_path, caplog):
    data_dir, bad = truncated
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="tfdsmlp"):
        assert _train(data_dir, str(out), "--skip-corrupt") == 0
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["skipped_records"] == {"train": 1, "valid": 0, "test": 0}
    logs = caplog.text
    assert bad in logs and "skipping 1 unreadable records" in logs
    with open(out / "config.yaml") as f:
        assert "skip_corrupt: true" in f.read()


def test_corrupted_validation_file_named_during_fit(tiny_dataset_dir,
                                                   tmp_path, tiny_spec):
    from tfdsmlp.models import build_model

    data_dir, bad = _copy(tiny_dataset_dir, tmp_path / "data", "valid",
                          "flip")
    cfg = TrainConfig(batch_size=64, epochs=1, shuffle_buffer=100)
    model = build_model("dnn", {"hidden_units": [8]}, tiny_spec)
    with pytest.raises(scan.CorruptRecordError, match="corrupted record") \
            as e:
        fit_ctr_model(model, data_dir, cfg, verbose=0)
    assert bad in str(e.value)
    # Skipping: the damaged file is read up to the bad record; the rest of
    # it (about half of the 96 validation rows) is counted as skipped.
    skipped = scan.skipped_records(data_dir, "valid")
    assert 0 < skipped < 96
    ds = reader.make_dataset(data_dir, "valid", 16, skip_corrupt=True)
    assert sum(int(y.shape[0]) for _, y in ds) == 96 - skipped
