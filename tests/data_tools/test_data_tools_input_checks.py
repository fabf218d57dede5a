"""Bad input stops early with the fix in the message; odd input just works.

Column options that would leak the label or name a column twice, splits
that come out empty or with one label, and failed runs that must leave
nothing behind (their own temporaries included, even after kill -9); a
UTF-8 byte-order mark and gzip/bzip2 inputs, which convert to the same
dataset as the plain file, with both engines.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import random
import subprocess
import sys

import pytest
from dataset_files import read_tree, without_sources

from data_tools import crc32c, staging
from data_tools.__main__ import main
from data_tools.convert import convert
from data_tools.outputs import ConvertError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress}


def _csv_text(n=400, seed=0, labels="01") -> str:
    rng = random.Random(seed)
    rows = ["label,user,item,price"]
    rows += [f"{rng.choice(labels)},u{rng.randrange(30)},i{rng.randrange(80)},"
             f"{rng.choice(['', '1.5', '-2', '0.25'])}" for _ in range(n)]
    return "\n".join(rows) + "\n"


def _convert_cli(tmp_path, capsys, *args) -> tuple[int, str]:
    code = main(["convert", "--format", "csv", "--quiet", *args])
    return code, capsys.readouterr().err


def _no_temps(parent) -> bool:
    return not [p for p in os.listdir(parent) if ".tmp-" in p]


# ------------------------------------------------------- column options
@pytest.mark.parametrize("flag", ["--categorical", "--numeric"])
def test_label_listed_as_feature_is_refused(tmp_path, capsys, flag):
    src = tmp_path / "a.csv"
    src.write_text(_csv_text())
    out = tmp_path / "fresh" / "out"
    code, err = _convert_cli(tmp_path, capsys, "--train", str(src), "--out",
                             str(out), "--label", "label", flag,
                             "user,label")
    assert code == 2
    assert err.startswith("python -m data_tools convert: error: ")
    assert "'label'" in err and "target leak" in err
    assert f"Remove it from {flag}" in err
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("options,where", [
    ({"categorical": "user,item,user"}, "--categorical"),
    ({"numeric": "price,price"}, "--numeric"),
    ({"categorical": "user,price", "numeric": "price"},
     "both --categorical and --numeric"),
])
def test_column_listed_twice_is_refused(tmp_path, options, where):
    src = tmp_path / "a.csv"
    src.write_text(_csv_text())
    with pytest.raises(ConvertError, match=where) as err:
        convert("csv", str(src), str(tmp_path / "out"), label="label",
                quiet=True, **options)
    assert "'user'" in str(err.value) or "'price'" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_duplicate_names_in_header_or_fields_are_refused(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("label,user,user\n1,a,b\n0,c,d\n")
    with pytest.raises(ConvertError, match="'user' is listed twice in the "
                       "header of .*--categorical"):
        convert("csv", str(src), str(tmp_path / "out"), label="label")
    libfm = tmp_path / "a.libfm"
    libfm.write_text("1 3:1 4:1\n0 5:1 6:1\n")
    with pytest.raises(ConvertError, match="'a' is listed twice in --fields"):
        convert("libfm", str(libfm), str(tmp_path / "out"), fields="a,a")
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "a.libfm"]


# ------------------------------------------------------ byte-order mark
@pytest.mark.parametrize("engine", ["python", "auto"])
def test_bom_is_ignored(tmp_path, engine):
    # CSV (the BOM before the header's label name) with a hashed split,
    # whose row offsets must not move, and libfm (before the first row).
    text = _csv_text(n=600, seed=1)
    libfm = "1 3:1 7:1\n0 4:1 7:1\n1 3:1 8:1\n0 5:1 8:1\n"
    cases = [("csv", "a.csv", text, {"label": "label", "numeric": "price",
                                     "split": "8:1:1", "seed": 2}),
             ("libfm", "a.libfm", libfm, {"fields": "a,b"})]
    for fmt, name, body, kw in cases:
        plain, bom = tmp_path / name, tmp_path / f"bom-{name}"
        plain.write_text(body)
        bom.write_bytes(b"\xef\xbb\xbf" + body.encode())
        convert(fmt, str(plain), str(tmp_path / f"{fmt}-plain"),
                engine="python", quiet=True, **kw)
        summary = convert(fmt, str(bom), str(tmp_path / f"{fmt}-bom"),
                          engine=engine, quiet=True, **kw)
        assert summary["engine"] == ("python" if engine == "python"
                                     else "native")
        want, _ = without_sources(read_tree(tmp_path / f"{fmt}-plain"))
        got, sources = without_sources(read_tree(tmp_path / f"{fmt}-bom"))
        assert got == want, (fmt, engine)
        assert sources[0]["bytes"] == os.path.getsize(bom)
        assert sources[0]["crc32c"] == crc32c.crc32c_file(str(bom))
    meta = json.loads((tmp_path / "csv-bom" / "dataset.json").read_text())
    assert [f["name"] for f in meta["fields"]] == ["user", "item", "price"]
    assert sum(s["rows"] for s in meta["splits"].values()) == 600


# ------------------------------------------------------ compressed input
@pytest.mark.parametrize("kind", ["gzip", "bzip2"])
@pytest.mark.parametrize("engine", ["python", "auto"])
def test_compressed_input_converts_like_plain(tmp_path, capsys, kind,
                                             engine):
    train, valid = _csv_text(n=800, seed=3), _csv_text(n=200, seed=4)
    (tmp_path / "train.csv").write_text(train)
    (tmp_path / "valid.csv").write_text(valid)
    # found by magic bytes: the training file's name has no .gz/.bz2
    packed_train = tmp_path / "train-packed.csv"
    packed_train.write_bytes(COMPRESSORS[kind](train.encode()))
    packed_valid = tmp_path / f"valid.csv.{kind}"
    packed_valid.write_bytes(COMPRESSORS[kind](valid.encode()))
    kw = {"label": "label", "numeric": "price", "min_count": 2}
    convert("csv", str(tmp_path / "train.csv"), str(tmp_path / "plain"),
            valid=str(tmp_path / "valid.csv"), engine="python", quiet=True,
            **kw)
    summary = convert("csv", str(packed_train), str(tmp_path / "packed"),
                      valid=str(packed_valid), engine=engine, **kw)
    assert summary["engine"] == ("python" if engine == "python"
                                 else "native")
    err = capsys.readouterr().err
    assert f"decompressing {packed_train} ({kind})" in err
    want, plain_sources = without_sources(read_tree(tmp_path / "plain"))
    got, sources = without_sources(read_tree(tmp_path / "packed"))
    assert got == want
    for src, path in zip(sources, (packed_train, packed_valid)):
        assert src["path"] == str(path) and src["compression"] == kind
        assert src["bytes"] == os.path.getsize(path)
        assert src["crc32c"] == crc32c.crc32c_file(str(path))
    assert [s["rows_read"] for s in sources] == [800, 200]
    assert "compression" not in plain_sources[0]
    assert _no_temps(tmp_path)


def test_compressed_input_with_split(tmp_path):
    text = _csv_text(n=1000, seed=5)
    (tmp_path / "a.csv").write_text(text)
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("a.csv", "a.csv.gz"):
        convert("csv", str(tmp_path / name), str(tmp_path / f"out-{name}"),
                label="label", split="8:1:1", seed=7, shards=2, quiet=True)
    assert without_sources(read_tree(tmp_path / "out-a.csv"))[0] == \
        without_sources(read_tree(tmp_path / "out-a.csv.gz"))[0]


def test_truncated_gzip_is_an_error(tmp_path):
    src = tmp_path / "a.csv.gz"
    src.write_bytes(gzip.compress(_csv_text().encode())[:-30])
    out = tmp_path / "new" / "out"
    with pytest.raises(ConvertError, match="a.csv.gz .*truncated or "
                       "corrupt; download it again"):
        convert("csv", str(src), str(out), label="label", quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["a.csv.gz"]


# ------------------------------------------------------------ split sizes
@pytest.mark.parametrize("engine", ["python", "native"])
def test_split_without_rows_is_an_error(tmp_path, engine):
    src = tmp_path / "a.csv"
    src.write_text(_csv_text(n=30))
    out = tmp_path / "new" / "out"
    with pytest.raises(ConvertError, match="split 'valid' would have 0 "
                       "rows, .*--split 1000:1 .*bigger share in --split"):
        convert("csv", str(src), str(out), label="label", split="1000:1",
                engine=engine, quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["a.csv"]


@pytest.mark.parametrize("engine", ["python", "native"])
@pytest.mark.parametrize("valid_text,message", [
    ("label,user,item,price\n", "0 rows, and at least 2 .*add rows to"),
    ("label,user,item,price\n1,u1,i1,\n", "1 row, .*add rows to"),
    ("label,user,item,price\n1,u1,i1,\n1,u2,i1,\n1,u3,i1,\n",
     ("only label 1 in its 3 rows, and AUC is undefined .*add rows with "
      "label 0 to")),
    ("label,user,item,price\n0,u1,i1,\n0,u2,i1,\n",
     "only label 0 .*add rows with label 1 to"),
])
def test_small_or_one_label_valid_file_is_an_error(tmp_path, engine,
                                                   valid_text, message):
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    train.write_text(_csv_text())
    valid.write_text(valid_text)
    out = tmp_path / "out"
    with pytest.raises(ConvertError, match=f"split 'valid' would have "
                       f"{message}") as e:
        convert("csv", str(train), str(out), valid=str(valid),
                label="label", engine=engine, quiet=True)
    assert f"{valid} (--valid)" in str(e.value)
    assert str(e.value).endswith(" the file, or leave out --valid")
    assert not out.exists() and _no_temps(tmp_path)


def test_empty_valid_file_is_an_error(tmp_path):
    (tmp_path / "train.csv").write_text(_csv_text())
    (tmp_path / "valid.csv").write_text("")
    with pytest.raises(ConvertError, match="valid.csv .*--valid.* is empty: "
                       "give a file with data rows, or leave out --valid"):
        convert("csv", str(tmp_path / "train.csv"), str(tmp_path / "out"),
                valid=str(tmp_path / "valid.csv"), label="label")
    assert not (tmp_path / "out").exists()


def test_one_label_training_split_is_allowed(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text(_csv_text(n=50, labels="1"))
    summary = convert("csv", str(src), str(tmp_path / "out"), label="label",
                      quiet=True)
    assert summary["rows"] == {"train": 50}


# ------------------------------------------ nothing left behind, stale temps
def test_failed_checks_leave_nothing(tmp_path, capsys):
    src = tmp_path / "a.csv"
    src.write_text(_csv_text(n=30))
    out = tmp_path / "fresh" / "deeper" / "out"
    failing = [
        ["--label", "label", "--numeric", "label"],
        ["--label", "label", "--split", "8:x"],
        ["--label", "nope"],
        ["--label", "label", "--split", "1000:1"],  # after the work
        ["--label", "label", "--min-count", "0"],
    ]
    for args in failing:
        code, err = _convert_cli(tmp_path, capsys, "--train", str(src),
                                 "--out", str(out), *args)
        assert code == 2 and "error: " in err, args
        assert sorted(os.listdir(tmp_path)) == ["a.csv"], args


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_are_removed(tmp_path, capsys):
    src = tmp_path / "a.csv"
    src.write_text(_csv_text())
    dead, host = _dead_pid(), staging.HOST
    stale = [f".out.tmp-{host}-{dead}-0badf00d",
             f".out.tmp-{host}-{dead}-0badf00d.old",
             f".out.tmp-{dead}-12345678"]  # named by an older version
    kept = [f".out.tmp-{host}-{os.getpid()}-cafebabe",  # a live process
            f".out.tmp-otherhost-{dead}-cafebabe",  # maybe live elsewhere
            f".other.tmp-{host}-{dead}-cafebabe",  # another output's
            ".out.tmp-notes"]
    for name in stale + kept:
        (tmp_path / name / "_inputs").mkdir(parents=True)
        (tmp_path / name / "_inputs" / "0-a.csv").write_text("x")
    convert("csv", str(src), str(tmp_path / "out"), label="label")
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".")) == \
        sorted(kept)
    err = capsys.readouterr().err
    for name in stale:
        assert f"removed {tmp_path / name}, left by an interrupted run " \
               f"(process {dead} is gone)" in err


KILLABLE = """
import sys, time
from data_tools import convert, inputs
stage = inputs.stage
def stage_then_hang(*args, **kwargs):
    stage(*args, **kwargs)
    print("staged", flush=True)
    time.sleep(600)
inputs.stage = stage_then_hang
convert.convert("csv", sys.argv[1], sys.argv[2], label="label", quiet=True)
"""


def test_killed_run_is_cleaned_up_by_the_next(tmp_path):
    src = tmp_path / "a.csv.gz"
    src.write_bytes(gzip.compress(_csv_text().encode()))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(src), str(out)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    try:
        assert proc.stdout.readline() == "staged\n"
        temp = f".out.tmp-{staging.HOST}-{proc.pid}-"
        [name] = [p for p in os.listdir(tmp_path) if p.startswith(temp)]
        assert os.listdir(tmp_path / name / "_inputs") == ["0-a.csv.gz"]
        # a run while the first one is alive leaves its directory alone
        convert("csv", str(src), str(out), label="label", quiet=True)
        assert (tmp_path / name).is_dir()
    finally:
        proc.kill()  # SIGKILL: no clean-up
        proc.wait()
        proc.stdout.close()
    assert (tmp_path / name).is_dir()
    convert("csv", str(src), str(out), label="label", quiet=True,
            overwrite=True)
    assert _no_temps(tmp_path) and (out / "dataset.json").is_file()


def test_help_explains_the_checks(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = "".join(capsys.readouterr().out.split())  # wrapped anywhere
    for phrase in ("gzip (.gz) or bzip2 (.bz2)", "byte-order mark",
                   "must not be listed in --categorical or --numeric",
                   "a column may be listed once", "at least 2 rows",
                   "both labels", "leaves no output directory behind",
                   ".DIR.tmp-HOST-PID-XXXX", "process is gone"):
        assert "".join(phrase.split()) in text, phrase
