"""`DatasetDir`: the one reader of dataset.json (checks, fingerprint)."""

from __future__ import annotations

import json
import os
import shutil

from tfdsmlp.dataset_dir import DatasetDir, DatasetError

import pytest


@pytest.fixture()
def copy(tiny_dataset_dir, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(tiny_dataset_dir, out)
    return out


def test_open_reads_spec_splits_rows_and_files(tiny_dataset_dir):
    data = DatasetDir.open(tiny_dataset_dir)
    assert DatasetDir.open(data) is data
    assert os.fspath(data) == os.path.abspath(tiny_dataset_dir)
    assert data.spec.vocab_sizes == [5, 7, 4]
    assert set(data.splits) == {"train", "valid", "test"}
    assert data.rows("train") == 320
    assert len(data.files("train")) == 2
    with pytest.raises(ValueError, match="'nope' not in .*dataset.json"):
        data.rows("nope")


@pytest.mark.parametrize("content,message", [
    ('{"format_version": 1, "fields": [', "not valid JSON"),
    ("[1, 2]", "top level should be a JSON object"),
    ('{"format_version": 99}', "unsupported format_version 99"),
    ('{"format_version": 1}', "invalid schema"),
])
def test_bad_dataset_json_names_the_file(copy, content, message):
    meta = json.loads((copy / "dataset.json").read_text())
    content = content.replace('"format_version": 1',
                              f'"format_version": {meta["format_version"]}')
    (copy / "dataset.json").write_text(content)
    with pytest.raises(DatasetError) as e:
        DatasetDir.open(copy)
    assert message in str(e.value)
    assert str(copy / "dataset.json") in str(e.value)


def test_missing_dataset_json_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_tools convert"):
        DatasetDir.open(tmp_path)


def test_missing_files_are_named(copy):
    data = DatasetDir.open(copy)
    victim = data.files("valid")[0]
    os.remove(victim)
    with pytest.raises(FileNotFoundError, match=os.path.basename(victim)):
        data.files("valid")


def test_fingerprint_follows_content_not_location(tiny_dataset_dir, copy):
    assert (DatasetDir.open(copy).fingerprint
            == DatasetDir.open(tiny_dataset_dir).fingerprint)
    meta = json.loads((copy / "dataset.json").read_text())
    meta["splits"]["valid"]["rows"] += 1
    (copy / "dataset.json").write_text(json.dumps(meta))
    assert (DatasetDir.open(copy).fingerprint
            != DatasetDir.open(tiny_dataset_dir).fingerprint)
