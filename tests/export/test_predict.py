"""`predict_file` / `python -m tfdsmlp predict`: a CSV or TFRecord file of
raw rows scored by an export in batches, equal to the in-process model,
streamed, with progress and clear errors."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os

from tfdsmlp import cli
from tfdsmlp.export.serving_requests import serialized_examples
from tfdsmlp.predict import (
    PredictError,
    Progress,
    load_model,
    predict_file,
    read_csv_batches,
)

import numpy as np
import pytest
import tensorflow as tf

TOL = 1e-6


@pytest.fixture(scope="module")
def model(exported):
    return load_model(exported["dsmlp"])


@pytest.fixture(scope="module")
def files(test_rows, tmp_path_factory):
    """The 64 raw test rows as CSV (a label column first, the inputs in
    reverse order, a blank line) and as TFRecord / GZIP TFRecord."""
    tmp = tmp_path_factory.mktemp("predict")
    names = [i.name for i in test_rows.inputs][::-1]
    rows = test_rows.rows()
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["label", *names])
    for k, r in enumerate(rows):
        w.writerow([k % 2] + [r[n] for n in names])
        if k == 10:
            text.write("\n")                       # blank line: skipped
    out = {"csv": tmp / "rows.csv", "tfrecord": tmp / "rows.tfrecord",
           "gz": tmp / "rows.tfrecord.gz"}
    out["csv"].write_text(text.getvalue(), encoding="utf-8")
    examples = serialized_examples(rows, test_rows.inputs)
    with tf.io.TFRecordWriter(str(out["tfrecord"])) as f:
        for e in examples:
            f.write(e)
    with tf.io.TFRecordWriter(str(out["gz"]), "GZIP") as f:
        for e in examples:
            f.write(e)
    return {k: str(v) for k, v in out.items()}


def _read(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0] == "probability,logit"
    return np.array([[float(x) for x in ln.split(",")] for ln in lines[1:]])


def _assert_equals_reference(path, reference):
    got = _read(path)
    ref = reference["dsmlp"]
    assert got.shape == (len(ref["logit"]), 2)
    np.testing.assert_allclose(got[:, 0], ref["probability"], atol=TOL)
    np.testing.assert_allclose(got[:, 1], ref["logit"], atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kind", ["csv", "tfrecord", "gz"])
def test_outputs_equal_the_in_process_model(kind, model, files, reference,
                                            tmp_path):
    out = str(tmp_path / "scores.csv")
    res = predict_file(model, files[kind], out, batch_size=10)
    assert res["rows"] == 64
    assert res["format"] == ("csv" if kind == "csv" else "tfrecord")
    assert res["signature"] == ("serving_default" if kind == "csv"
                                else "predict_examples")
    _assert_equals_reference(out, reference)
    assert os.listdir(tmp_path) == ["scores.csv"]     # no temporary file


def test_scored_in_batches_of_at_most_batch_size(model, files, tmp_path):
    import dataclasses

    sizes = []

    def spy(fn):
        def call(**feed):
            sizes.append(int(next(iter(feed.values())).shape[0]))
            return fn(**feed)
        return call

    spied = dataclasses.replace(model, predict_raw=spy(model.predict_raw),
                                predict_examples=spy(model.predict_examples))
    predict_file(spied, files["csv"], str(tmp_path / "a.csv"), batch_size=16)
    predict_file(spied, files["tfrecord"], str(tmp_path / "b.csv"),
                 batch_size=16)
    assert sizes == [16, 16, 16, 16] * 2


def test_csv_reader_streams(model):
    """Batches come out of an endless input: nothing reads the whole
    file, only the batch being built."""
    header = ",".join(model.inputs)
    row = ",".join("" if d == "string" else "1" for d in model.inputs.values())
    lines = itertools.chain([header + "\n"], itertools.repeat(row + "\n"))
    batches = read_csv_batches(lines, model.inputs, 1000)
    for _ in range(3):
        batch = next(batches)
        assert batch.rows == 1000
        assert set(batch.feed) == set(model.inputs)
    assert batch.feed["x0"].dtype == tf.float32
    assert batch.feed["c0"].numpy()[0] == b""


def test_progress_reports_rows_rate_and_eta(model, files, tmp_path):
    stream = io.StringIO()
    size = os.path.getsize(files["csv"])
    predict_file(model, files["csv"], str(tmp_path / "s.csv"), batch_size=8,
                 progress=Progress(size, stream=stream, interval=0))
    text = stream.getvalue()
    assert "predict: 8 rows," in text and "rows/s" in text
    assert "ETA 0:00:00" in text and "% of" in text
    assert text.rstrip().splitlines()[-1].startswith("predict: 64 rows in ")


def test_missing_columns_are_named_with_the_expected_ones(model, test_rows,
                                                          tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("c0,c1,x0\na,b,1\n")
    with pytest.raises(PredictError) as e:
        predict_file(model, str(path), str(tmp_path / "o.csv"))
    msg = str(e.value)
    assert "lacks the model's input column(s) ['c2', 'c3', 'c4', 'c5', " \
           "'x1']" in msg
    assert "Expected a header line with the columns ['c0', 'c1', 'c2', " \
           "'c3', 'c4', 'c5', 'x0', 'x1']" in msg
    assert not os.path.exists(tmp_path / "o.csv")


def test_bad_number_names_row_and_column(model, tmp_path):
    header = ",".join(model.inputs)
    good = ",".join("a" if d == "string" else "1.5"
                    for d in model.inputs.values())
    path = tmp_path / "bad.csv"
    path.write_text(f"{header}\n{good}\n{good.replace('1.5', 'abc', 1)}\n")
    with pytest.raises(PredictError, match=r"data row 2, column `x0`: "
                                           r"expected a number .*'abc'"):
        predict_file(model, str(path), str(tmp_path / "o.csv"))
    path.write_text(f"{header}\n{good},extra\n")
    with pytest.raises(PredictError, match="data row 1: 9 columns, the "
                                           "header has 8"):
        predict_file(model, str(path), str(tmp_path / "o.csv"))


def test_graph_errors_name_the_feature_and_rows(model, test_rows, tmp_path):
    rows = test_rows.rows(3)
    inputs = [i for i in test_rows.inputs if i.name != "c3"]
    path = tmp_path / "x.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as f:
        for e in serialized_examples(rows, inputs):
            f.write(e)
    with pytest.raises(PredictError, match=r"x.tfrecord, rows 1-3: .*c3"):
        predict_file(model, str(path), str(tmp_path / "o.csv"))


def test_wrong_paths_are_clear_errors(model, exported, files, tmp_path):
    out = str(tmp_path / "o.csv")
    with pytest.raises(FileNotFoundError, match="input file .* not found"):
        predict_file(model, str(tmp_path / "none.csv"), out)
    with pytest.raises(FileNotFoundError, match="output directory"):
        predict_file(model, files["csv"], str(tmp_path / "no" / "o.csv"))
    with pytest.raises(FileNotFoundError, match="not found: pass a version "
                                                "directory"):
        load_model(tmp_path / "missing")
    model_dir = os.path.dirname(exported["dsmlp"])
    with pytest.raises(PredictError, match=r"model directory with versions "
                                           r"\[1\]; pass one version"):
        load_model(model_dir)
    with pytest.raises(PredictError, match="no saved_model.pb"):
        load_model(tmp_path)
    with pytest.raises(PredictError, match="not a readable TFRecord"):
        predict_file(model, files["csv"], out, input_format="tfrecord")
    with pytest.raises(PredictError, match="batch-size` should be >= 1"):
        predict_file(model, files["csv"], out, batch_size=0)


def test_cli_predict(exported, files, reference, tmp_path, capsys):
    out = str(tmp_path / "cli.csv")
    rc = cli.main(["predict", exported["dsmlp"], "--input", files["gz"],
                   "--output", out, "--batch-size", "20"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "predicted 64 rows" in captured.out
    assert "predict: 64 rows in" in captured.err        # progress, stderr
    _assert_equals_reference(out, reference)
    tsv = tmp_path / "rows.tsv"
    with open(files["csv"], encoding="utf-8") as f:
        tsv.write_text(f.read().replace(",", "\t"))
    assert cli.main(["predict", exported["dsmlp"], "-i", str(tsv), "-o", out,
                     "--delimiter", "tab", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    _assert_equals_reference(out, reference)


def test_cli_predict_errors_and_help(exported, files, tmp_path, capsys):
    rc = cli.main(["predict", os.path.dirname(exported["dsmlp"]),
                   "--input", files["csv"], "--output",
                   str(tmp_path / "o.csv")])
    assert rc == 2
    assert "tfdsmlp predict: error: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    text = capsys.readouterr().out
    for flag in ("--input", "--output", "--format", "--batch-size",
                 "--delimiter", "--quiet", "path"):
        assert flag in text


def test_gzip_csv_and_stdin(model, files, reference, tmp_path, monkeypatch):
    gz = tmp_path / "rows.csv.gz"
    with open(files["csv"], "rb") as f:
        data = f.read()
    gz.write_bytes(gzip.compress(data))
    out = str(tmp_path / "o.csv")
    predict_file(model, str(gz), out)
    _assert_equals_reference(out, reference)

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr("sys.stdin", Stdin)
    assert predict_file(model, "-", out)["rows"] == 64
    _assert_equals_reference(out, reference)
