"""`tfdsmlp.bench` on a tiny dataset: every figure is measured and sane."""

import os

from tiny_data import SHARED_DATA

from tfdsmlp.bench import format_bench, run_bench


def test_bench_reports_every_figure(tiny_dataset_dir):
    criteo = SHARED_DATA / "criteo_sample" / "train.txt"
    result = run_bench(tiny_dataset_dir, preset="synthetic",
                       teachers=("gdcn",), batch_size=32, steps=2,
                       repeats=5, log=lambda *_: None,
                       criteo_file=str(criteo) if criteo.exists() else None,
                       convert_rows=20_000)
    assert set(result["train"]) == {"gdcn", "distill", "align"}
    for rates in result["train"].values():
        assert rates["cached"] > 0 and rates["tfrecord"] > 0
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
    assert os.path.isdir(tiny_dataset_dir)
