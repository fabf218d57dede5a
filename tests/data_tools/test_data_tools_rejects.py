"""Malformed rows: counted per reason, listed with line numbers, thresholded."""

from __future__ import annotations

import json

import pytest

from data_tools import chunks
from data_tools.convert import convert
from data_tools.inspect_dataset import decode_rows, load_examples
from data_tools.outputs import ConvertError


def _criteo_line(label="0", ints=None, cats=None) -> str:
    ints = ints if ints is not None else [str(i) for i in range(13)]
    cats = cats if cats is not None else [f"{i:08x}" for i in range(26)]
    return "\t".join([label] + ints + cats)


def _write_criteo_fixture(path):
    """20 lines: 4 bad ones (line numbers 3, 7, 12, 16), one per reason."""
    lines = []
    for i in range(1, 21):
        if i == 3:
            lines.append(_criteo_line()[:-20])           # wrong column count
        elif i == 7:
            lines.append(_criteo_line(label="2"))        # bad label
        elif i == 12:
            ints = [str(i) for i in range(13)]
            ints[4] = "abc"
            lines.append(_criteo_line(ints=ints))        # bad number
        elif i == 16:
            lines.append("")                             # blank line
        else:
            ints = [str(i * k) if k % 3 else "" for k in range(13)]
            lines.append(_criteo_line(label=str(i % 2), ints=ints))
    path.write_text("\n".join(lines) + "\n")
    return {3: "wrong_column_count", 7: "bad_label", 12: "bad_number",
            16: "blank_line"}


def _rejected_entries(out_dir):
    rows = []
    for line in (out_dir / "rejected.txt").read_text().splitlines():
        if not line.startswith("#"):
            split, file, num, reason, raw = line.split("\t", 4)
            rows.append((split, file, int(num), reason, raw))
    return rows


def test_rejects_fail_with_default_threshold(tmp_path):
    src = tmp_path / "bad.txt"
    _write_criteo_fixture(src)
    out = tmp_path / "out"
    with pytest.raises(ConvertError) as err:
        convert("criteo", str(src), str(out), quiet=True)
    msg = str(err.value)
    assert str(src) in msg and "--max-reject-fraction" in msg
    assert "4 of 20 rows" in msg
    for reason in ("wrong_column_count=1", "bad_label=1", "bad_number=1",
                   "blank_line=1"):
        assert reason in msg
    assert f"{src}:7 bad_label" in msg
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize("num_chunks", [1, 5])
def test_rejects_counted_and_listed(tmp_path, monkeypatch, num_chunks):
    src = tmp_path / "bad.txt"
    bad = _write_criteo_fixture(src)
    if num_chunks > 1:  # several chunks: line numbers must stay global
        monkeypatch.setattr(chunks, "chunk_count",
                            lambda size, shards, **kw: num_chunks)
    out = tmp_path / "out"
    summary = convert("criteo", str(src), str(out), quiet=True,
                      max_reject_fraction=0.5)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["rejected"]["train"] == {r: 1 for r in bad.values()}
    assert meta["splits"]["train"]["rows"] == 16
    assert meta["sources"][0]["rows_read"] == 20 == \
        summary["rows_read"]["train"]
    assert summary["rows"]["train"] + sum(
        meta["rejected"]["train"].values()) == 20
    entries = _rejected_entries(out)
    assert [(e[2], e[3]) for e in entries] == sorted(bad.items())
    assert all(e[0] == "train" and e[1] == str(src) for e in entries)
    raw_lines = src.read_text().split("\n")
    assert all(e[4] == raw_lines[e[2] - 1] for e in entries)
    rows = decode_rows(str(out), load_examples(str(out), "train"))
    good = [i for i in range(1, 21) if i not in bad]
    assert [r["label"] for r in rows] == [i % 2 for i in good]
    assert rows[0]["I1"] == "" and rows[0]["I2"] == "1"  # line 1: I2 = 1*1


def test_libfm_bad_label_and_fields(tmp_path):
    src = tmp_path / "x.libfm"
    src.write_text("1 5:1 9:1\n-1 6:1 9:1\n3 5:1 9:1\n0 5:1\n1 7:1 8:1\n")
    out = tmp_path / "out"
    convert("libfm", str(src), str(out), fields="a,b", quiet=True,
            max_reject_fraction=0.5)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["rejected"]["train"] == {"bad_label": 1,
                                         "wrong_column_count": 1}
    rows = decode_rows(str(out), load_examples(str(out), "train"))
    assert rows == [{"label": 1, "a": "5", "b": "9"},
                    {"label": 0, "a": "6", "b": "9"},
                    {"label": 1, "a": "7", "b": "8"}]
    assert [e[2] for e in _rejected_entries(out)] == [3, 4]


def test_csv_quotes_missing_and_numeric(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text('y,a,b,n\n1,u,v,1.5\n0,"p,q",v,\n1,,w,-2\n0,u,v,nan\n')
    out = tmp_path / "out"
    convert("csv", str(src), str(out), label="y", numeric="n", quiet=True,
            max_reject_fraction=0.5)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["rejected"]["train"] == {"bad_number": 1}
    assert [f["kind"] for f in meta["fields"]] == ["categorical",
                                                   "categorical", "numeric"]
    rows = decode_rows(str(out), load_examples(str(out), "train"))
    assert rows == [{"label": 1, "a": "u", "b": "v", "n": 1.5},
                    {"label": 0, "a": "p,q", "b": "v", "n": 0.0},
                    {"label": 1, "a": "", "b": "w", "n": -2.0}]
    assert (out / "vocab" / "a.txt").read_bytes() == b"p,q\nu\n"


def test_avazu_bad_hour(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("id,click,hour,C1,site_id\n"
                   "1,0,14102100,1005,abc\n"
                   "2,1,14109900,1005,abc\n"      # month 99
                   "3,1,14102623,1002,def\n")     # 2014-10-26 = Sunday
    out = tmp_path / "out"
    convert("avazu", str(src), str(out), quiet=True, max_reject_fraction=0.5)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["rejected"]["train"] == {"bad_hour": 1}
    rows = decode_rows(str(out), load_examples(str(out), "train"))
    assert rows == [
        {"label": 0, "hour_of_day": "0", "weekday": "1", "C1": "1005",
         "site_id": "abc"},
        {"label": 1, "hour_of_day": "23", "weekday": "6", "C1": "1002",
         "site_id": "def"}]
