"""FeatureSpec: validation, properties, dataset.json round trip and errors."""

from __future__ import annotations

import json

from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.features import (
    FORMAT_VERSION,
    NUM_RESERVED_IDS,
    FeatureSpec,
    FieldSpec,
)

import pytest


def test_properties(tiny_spec):
    assert tiny_spec.num_categorical == 3 and tiny_spec.num_numeric == 2
    assert tiny_spec.num_fields == 5
    assert tiny_spec.vocab_sizes == [5, 7, 4]
    assert [f.name for f in tiny_spec.categorical] == ["user", "item", "ctx"]
    assert [f.name for f in tiny_spec.numeric] == ["price", "age"]


def test_field_order_is_kept_within_each_kind():
    spec = FeatureSpec(fields=(
        FieldSpec("n1", "numeric"), FieldSpec("b", "categorical", 3),
        FieldSpec("a", "categorical", 9), FieldSpec("n0", "numeric")))
    assert [f.name for f in spec.categorical] == ["b", "a"]
    assert spec.vocab_sizes == [3, 9]
    assert [f.name for f in spec.numeric] == ["n1", "n0"]


def test_dict_round_trip(tiny_spec):
    data = json.loads(json.dumps(tiny_spec.to_dict()))
    assert FeatureSpec.from_dict(data) == tiny_spec


def test_from_dict_accepts_vocab_metadata_and_rejects_unknown_keys():
    spec = FeatureSpec.from_dict({"fields": [
        {"name": "a", "kind": "categorical", "vocab_size": 4,
         "vocab_file": "vocab/a.txt", "padding_id": 0, "oov_id": 1}]})
    assert spec.vocab_sizes == [4] and spec.label == "label"
    with pytest.raises(ValueError, match=r"fields\[0\].*'vocab_sise'"):
        FeatureSpec.from_dict({"fields": [
            {"name": "a", "kind": "categorical", "vocab_sise": 4}]})


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "a", "kind": "text"}, r"`a`.*kind='text'"),
    ({"name": "a", "kind": "categorical", "vocab_size": 1},
     r"`a`.*vocab_size=1"),
])
def test_field_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FieldSpec(**kwargs)


def test_spec_errors():
    assert NUM_RESERVED_IDS == 2
    with pytest.raises(ValueError, match="at least one field"):
        FeatureSpec(fields=())
    with pytest.raises(ValueError, match=r"Duplicate field names: \['a'\]"):
        FeatureSpec(fields=(FieldSpec("a", "numeric"),
                            FieldSpec("a", "categorical", 3)))


def test_from_dataset_dir(tiny_dataset_dir, tiny_spec):
    assert FeatureSpec.from_dataset_dir(tiny_dataset_dir) == tiny_spec
    meta = DatasetDir.open(tiny_dataset_dir).meta
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["splits"]["train"]["rows"] == 320
    assert len(meta["splits"]["train"]["files"]) == 2


def test_dataset_json_errors(tmp_path, tiny_spec):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        DatasetDir.open(str(tmp_path))
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"format_version": FORMAT_VERSION + 1, **tiny_spec.to_dict()}))
    with pytest.raises(ValueError, match="unsupported format_version"):
        FeatureSpec.from_dataset_dir(str(tmp_path))


def test_schema_field_keys_are_fieldspec_attributes():
    # data_tools writes dataset.json fields from tfdsmlp.schema (so that the
    # converter starts without the model side); they must be FieldSpec's.
    import dataclasses

    from tfdsmlp.features import FieldSpec
    from tfdsmlp.schema import FIELD_SPEC_KEYS
    assert FIELD_SPEC_KEYS == tuple(f.name for f in
                                    dataclasses.fields(FieldSpec))
