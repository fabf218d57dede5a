"""`tfdsmlp.bench` on a tiny dataset: every figure is measured and sane."""

import os

from tfdsmlp.bench import format_bench, run_bench

import pytest
from tiny_data import SHARED_DATA


def test_bench_reports_every_figure(tiny_dataset_dir):
    criteo = SHARED_DATA / "criteo_sample" / "train.txt"
    result = run_bench(tiny_dataset_dir, preset="synthetic",
                       teachers=("gdcn",), batch_size=32, steps=2,
                       repeats=5, log=lambda *_: None,
                       criteo_file=str(criteo) if criteo.exists() else None,
                       convert_rows=20_000, sparse_rows=5_000,
                       steps_per_execution=2)
    assert result["steps_per_execution"] == 2
    # the streams are timed over whole epochs: 320 rows // 32 = 10 steps
    assert result["train_steps"] == {"cached": 2, "tfrecord": 10,
                                     "memory": 10}
    assert set(result["sparse"]["train"]) == {
        "adam_table_l2", "adam_batch_l2", "lazy_adam_batch_l2",
        "lazy_adam_lazy_l2", "catch_up_adam_lazy_l2"}
    assert min(result["sparse"]["train"].values()) > 0
    assert set(result["train"]) == {"gdcn", "distill", "align"}
    for rates in result["train"].values():
        assert min(rates[k] for k in ("cached", "tfrecord", "memory")) > 0
    for name in ("gdcn", "dsmlp"):
        r = result["infer"][name]
        assert 0 < r["batch1_p50_ms"] <= r["batch1_p99_ms"]
        assert r["batch32_examples_per_s"] > 0
    assert result["input_examples_per_s"] > 0
    assert result["infer_ratio_dsmlp_over_teacher"]["gdcn"] > 0
    if criteo.exists():
        assert result["convert"]["rows"] >= 20_000
        assert result["convert"]["convert_rows_per_s"] > 0
    table = format_bench(result)
    assert "| distill |" in table and "DS-MLP / gdcn" in table
    assert "- lazy_adam_batch_l2: " in table
    assert "batch 32, 2 step(s) per execution" in table
    rows = result["train_rows"]
    assert rows > 0 and "s per epoch" in table
    assert result["input_memory_examples_per_s"] > 0
    assert result["epoch_stream"] == "tfrecord"  # synthetic: no in_memory
    assert f"| {rows / result['train']['gdcn']['tfrecord']:.1f} |" in table
    assert os.path.isdir(tiny_dataset_dir)


def test_infer_only_times_saved_models_only(tiny_dataset_dir, tmp_path):
    import tfdsmlp  # noqa: F401
    from tfdsmlp.export import export_saved_model
    from tfdsmlp.features import FeatureSpec
    from tfdsmlp.models import build_model

    import tensorflow as tf

    spec = FeatureSpec.from_dataset_dir(tiny_dataset_dir)
    model = build_model("dnn", {"hidden_units": [4]}, spec)
    model(model.dummy_inputs())
    # without data_dir: the pre-indexed signatures alone, and a warning
    # that says so
    with pytest.warns(UserWarning, match="without data_dir: only the "
                      "pre-indexed signatures"):
        path = export_saved_model(model, spec, str(tmp_path), "m",
                                  warmup=False)
    result = run_bench(tiny_dataset_dir, batch_size=32, repeats=5,
                       saved_models={"m": path}, infer_only=True,
                       log=lambda *_: None)
    assert set(result) == {"batch_size", "infer"}
    assert result["infer"]["saved:m"]["batch32_examples_per_s"] > 0
    table = format_bench(result)
    assert "| saved:m |" in table and "train ex/s" not in table
    assert tf.saved_model.contains_saved_model(path)
