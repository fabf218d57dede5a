"""The native converter writes exactly what the Python one writes.

Every test converts the same input with `engine="python"` and with the C
program under several settings (row cache on and off, tiny pieces so that
threads interleave many of them, 1-3 threads) and compares every output
file byte for byte. Inputs the C program does not handle must fall back to
Python with the same result, or fail with `engine="native"`.
"""

from __future__ import annotations

import os
import random
import zlib

import pytest
from dataset_files import read_tree

from data_tools import crc32c, native
from data_tools.__main__ import main
from data_tools.convert import convert
from data_tools.outputs import ConvertError


@pytest.fixture(autouse=True)
def _native_binary(request):
    """Skips (with the reason) where the C converter cannot be built."""
    if "no_compiler" in request.node.name:
        return
    path, why = native.available()
    if path is None:
        pytest.skip(f"native converter not available: {why}")


# (environment, workers) of the native runs compared with Python.
NATIVE_SETTINGS = [
    ({}, 2),
    ({"TFDSMLP_NATIVE_CACHE_MB": "0", "TFDSMLP_NATIVE_PIECE_BYTES": "4096"},
     2),
    ({"TFDSMLP_NATIVE_PIECE_BYTES": "1000"}, 3),
    ({"TFDSMLP_NATIVE_VARINT_WORDS": "0"}, 1),
]


def _assert_same_as_python(tmp_path, monkeypatch, fmt, train, **kw):
    ref = tmp_path / "python"
    convert(fmt, str(train), str(ref), engine="python", quiet=True, **kw)
    want = read_tree(ref)
    for k, (env, workers) in enumerate(NATIVE_SETTINGS):
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            out = tmp_path / f"native{k}"
            summary = convert(fmt, str(train), str(out), engine="native",
                              workers=workers, quiet=True, **kw)
        assert summary["engine"] == "native"
        got = read_tree(out)
        assert sorted(got) == sorted(want), (env, workers)
        for name in want:
            assert got[name] == want[name], (env, workers, name)
    return want


# Raw Criteo values that exercise the transforms and the hash table keys:
# negatives, floats, leading zeros, exponents, empty values; tokens of
# 0-12 bytes, 8-byte tokens whose last byte looks like a length, and long
# tokens sharing an 8-byte prefix.
INTS = ["", "0", "1", "2", "3", "-1", "-2", "17", "123456", "99999999999",
        "1.5", "2.0", "2.5", "+4", "007", "1e3", "0.0001", "12345"]
TOKENS = ["", "68fd1e64", "05db9164", "ab", "a", "abcdefg", "abcdefgh1",
          "abcdefgh2", "ab\x00\x00\x00\x00\x00\x02", "ab\x00\x00\x00\x00\x00",
          "1234567890ab", "e5ba7672", "07d13a8f", "x\x01"]


def _criteo(path, n=3000, seed=0, newline="\n", last_newline=True):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        cols = [rng.choice("01")]
        cols += [rng.choice(INTS) for _ in range(13)]
        cols += [rng.choice(TOKENS) if rng.random() < 0.5
                 else f"{rng.randrange(1 << 12):08x}" for _ in range(26)]
        lines.append("\t".join(cols))
    text = newline.join(lines) + (newline if last_newline else "")
    path.write_bytes(text.encode("latin-1"))
    return path


@pytest.mark.parametrize("numeric", ["bucketize", "log1p"])
def test_criteo_split_same_bytes(tmp_path, monkeypatch, numeric):
    src = _criteo(tmp_path / "c.txt")
    files = _assert_same_as_python(tmp_path, monkeypatch, "criteo", src,
                                   split="8:1:1", seed=3, shards=3,
                                   min_count=2, criteo_numeric=numeric)
    assert {"train/part-00002.tfrecord", "vocab/C1.txt",
            "dataset.json"} <= set(files)


def test_row_cache_budget_runs_out(tmp_path, monkeypatch):
    # A 1 MiB row cache holds about 13000 Criteo rows: the pieces cached
    # first keep their rows, a piece that crosses the budget drops its
    # cache and pass 2 parses it again.
    src = _criteo(tmp_path / "c.txt", n=25000, seed=6)
    ref = tmp_path / "python"
    convert("criteo", str(src), str(ref), split="8:1:1", engine="python",
            quiet=True)
    monkeypatch.setenv("TFDSMLP_NATIVE_CACHE_MB", "1")
    monkeypatch.setenv("TFDSMLP_NATIVE_PIECE_BYTES", "200000")
    convert("criteo", str(src), str(tmp_path / "native"), split="8:1:1",
            engine="native", quiet=True)
    assert read_tree(tmp_path / "native") == read_tree(ref)


def test_criteo_crlf_and_no_final_newline(tmp_path, monkeypatch):
    src = _criteo(tmp_path / "c.txt", n=500, newline="\r\n",
                  last_newline=False)
    _assert_same_as_python(tmp_path, monkeypatch, "criteo", src,
                           split="2:1")


def test_byte_order_mark_same_bytes(tmp_path, monkeypatch):
    # The C program skips a UTF-8 BOM and counts row offsets (the split
    # hash key) from its end, as the Python converter does.
    src = _criteo(tmp_path / "c.txt", n=500, seed=7)
    src.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    _assert_same_as_python(tmp_path, monkeypatch, "criteo", src,
                           split="8:1:1", seed=1)


PRICES = ["", "0", "1.25", "-3", "7e-3", "12.5"]
CITIES = ["", "rome", "paris", "a-very-long-city-name"]


def _csv_rows(rng, n, header=True):
    rows = ["label,user,item,price,city"] if header else []
    for _ in range(n):
        rows.append(f"{rng.choice('01')},u{rng.randrange(40)},"
                    f"i{rng.randrange(300)},{rng.choice(PRICES)},"
                    f"{rng.choice(CITIES)}")
    return rows


def test_csv_separate_files_same_bytes(tmp_path, monkeypatch):
    rng = random.Random(1)
    train, valid, test = (tmp_path / f"{s}.csv" for s in ("tr", "va", "te"))
    # a BOM before the training file's header
    train.write_text("\ufeff" + "\n".join(_csv_rows(rng, 2000)) + "\n",
                     encoding="utf-8")
    valid.write_bytes(("\r\n".join(_csv_rows(rng, 300)) + "\r\n").encode())
    test.write_text("\n".join(_csv_rows(rng, 300)))  # no final newline
    _assert_same_as_python(tmp_path, monkeypatch, "csv", train,
                           valid=str(valid), test=str(test), label="label",
                           numeric="price", min_count=3)


def test_libfm_and_avazu_same_bytes(tmp_path, monkeypatch):
    rng = random.Random(2)
    libfm = tmp_path / "a.libfm"
    libfm.write_text("".join(
        f"{rng.choice(['1', '-1', '0'])} {rng.randrange(50)}:1 "
        f"{50 + rng.randrange(9)}:1.0 {rng.randrange(99)}\n"
        for _ in range(1500)))
    _assert_same_as_python(tmp_path / "l", monkeypatch, "libfm", libfm,
                           split="8:2", fields="a,b,c")
    avazu = tmp_path / "avazu.csv"
    hours = ["14102100", "16022923", "14103023", "15123100"]
    avazu.write_text("id,click,hour,C1,site_id\n" + "".join(
        f"{k},{rng.choice('01')},{rng.choice(hours)},{rng.randrange(5)},"
        f"s{rng.randrange(30)}\n" for k in range(1500)))
    _assert_same_as_python(tmp_path / "a", monkeypatch, "avazu", avazu,
                           split="8:1:1", seed=5)


def test_token_indices_past_16_bits(tmp_path, monkeypatch):
    # Pass 1 caches token indices in 16 bits; a field with more than 65535
    # distinct tokens sends the rest to the chunk's overflow list.
    rng = random.Random(5)
    rows = ["label,user,city"]
    rows += [f"{rng.choice('01')},u{k},{rng.choice(['rome', 'paris'])}"
             for k in rng.sample(range(10 ** 6), 70000)]
    src = tmp_path / "wide.csv"
    src.write_text("\n".join(rows) + "\n")
    want = _assert_same_as_python(tmp_path, monkeypatch, "csv", src,
                                  label="label")
    assert want["vocab/user.txt"].count(b"\n") == 70000
    # one thread sees all 70000 (the settings above give it to the
    # per-field loop of pass 2; this is the loop over varint words)
    convert("csv", str(src), str(tmp_path / "one"), label="label",
            engine="native", workers=1, quiet=True)
    assert read_tree(tmp_path / "one") == want


def test_line_longer_than_a_slice_and_page_sized_file(tmp_path, monkeypatch):
    # A 1.5 MiB token (the input is read 256 KiB at a time, into a buffer
    # that doubles for a longer line) ...
    rng = random.Random(3)
    rows = _csv_rows(rng, 200)
    rows.insert(50, "1,u1,i1,2.5," + "x" * (3 << 19))
    src = tmp_path / "long.csv"
    src.write_text("\n".join(rows) + "\n")
    _assert_same_as_python(tmp_path / "a", monkeypatch, "csv", src,
                           label="label", numeric="price")
    # ... and a file of exactly two pages that ends in a short token, whose
    # 8-byte key read crosses the end of the data (into the padding).
    text = "\n".join(_csv_rows(rng, 100)) + "\n1,u1,i1,2,"
    text += "y" * (8192 - len(text) - 1) + "z"
    src = tmp_path / "page.csv"
    src.write_text(text)
    assert os.path.getsize(src) == 8192
    _assert_same_as_python(tmp_path / "b", monkeypatch, "csv", src,
                           label="label", numeric="price")


@pytest.mark.parametrize("bad,why", [
    ("1_000", "does not parse"),       # Python float() accepts it
    ("abc", "does not parse"),         # a reject: bad_number
])
def test_unsupported_value_falls_back_to_python(tmp_path, capsys, bad, why):
    src = _criteo(tmp_path / "c.txt", n=300)
    lines = src.read_bytes().split(b"\n")
    cols = lines[120].split(b"\t")
    cols[5] = bad.encode()
    lines[120] = b"\t".join(cols)
    src.write_bytes(b"\n".join(lines))
    ref = tmp_path / "python"
    convert("criteo", str(src), str(ref), engine="python", quiet=True,
            max_reject_fraction=0.5)
    summary = convert("criteo", str(src), str(tmp_path / "auto"),
                      max_reject_fraction=0.5)
    assert summary["engine"] == "python"
    err = capsys.readouterr().err
    assert "using the Python converter" in err and why in err
    assert f"{src}: row at byte" in err
    assert read_tree(tmp_path / "auto") == read_tree(ref)
    with pytest.raises(ConvertError, match="--engine native cannot"):
        convert("criteo", str(src), str(tmp_path / "native"),
                engine="native", quiet=True, max_reject_fraction=0.5)
    assert not (tmp_path / "native").exists()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bad", ["1\ta", "", "EXTRA", "\t"])
def test_wrong_column_count_names_the_row(tmp_path, newline, bad):
    # The line scan that splits a row also finds its end: a row with too
    # few or too many columns, or a blank one, is named by its byte offset.
    src = _criteo(tmp_path / "c.txt", n=300, newline=newline)
    lines = src.read_bytes().split(newline.encode())
    if bad == "EXTRA":
        bad = lines[120].decode("latin-1") + "\tx"
    elif bad == "\t":
        bad = lines[120].decode("latin-1") + "\t"
    lines[120] = bad.encode("latin-1")
    src.write_bytes(newline.encode().join(lines))
    offset = sum(len(line) + len(newline) for line in lines[:120])
    with pytest.raises(ConvertError, match=f"row at byte {offset}: blank "
                       "line or wrong column count"):
        convert("criteo", str(src), str(tmp_path / "n"), engine="native",
                quiet=True, max_reject_fraction=0.5)


def test_rejected_rows_quotes_and_gzip_fall_back(tmp_path):
    rng = random.Random(4)
    rows = _csv_rows(rng, 400)
    rows[10] = "1,u1,i1"                        # wrong column count
    rows[20] = ""                               # blank line
    rows[30] = '0,"u,2",i3,1.0,rome'            # quoted field
    src = tmp_path / "a.csv"
    src.write_text("\n".join(rows) + "\n")
    for kw in ({}, {"compression": "GZIP"}):
        ref, auto = tmp_path / f"py{len(kw)}", tmp_path / f"auto{len(kw)}"
        convert("csv", str(src), str(ref), label="label", engine="python",
                quiet=True, **kw)
        summary = convert("csv", str(src), str(auto), label="label",
                          quiet=True, **kw)
        assert summary["engine"] == "python"
        assert read_tree(auto) == read_tree(ref)
    meta = (tmp_path / "py0" / "rejected.txt").read_text()
    assert "wrong_column_count" in meta and "blank_line" in meta
    with pytest.raises(ConvertError, match="compression GZIP"):
        convert("csv", str(src), str(tmp_path / "n"), label="label",
                engine="native", compression="GZIP", quiet=True)


def test_no_compiler_falls_back(tmp_path, monkeypatch, capsys):
    # runs without a compiler too: it removes it
    monkeypatch.setenv("TFDSMLP_NATIVE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "no-such-compiler-here")
    src = _criteo(tmp_path / "c.txt", n=100)
    summary = convert("criteo", str(src), str(tmp_path / "out"))
    assert summary["engine"] == "python"
    assert "cannot build the native converter: no C compiler" in \
        capsys.readouterr().err
    with pytest.raises(ConvertError, match="no C compiler"):
        convert("criteo", str(src), str(tmp_path / "out2"), engine="native")


def test_failing_converter_falls_back_or_fails_clearly(tmp_path, monkeypatch,
                                                       capsys):
    # A converter that crashes or hits an I/O error: auto converts with
    # Python (and says so, even with quiet); native fails with the message.
    fake = tmp_path / "ctrconvert"
    fake.write_text("#!/bin/sh\necho 'cannot write x: No space' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(native, "available", lambda: (str(fake), None))
    src = _criteo(tmp_path / "c.txt", n=100)
    summary = convert("criteo", str(src), str(tmp_path / "auto"), quiet=True)
    assert summary["engine"] == "python"
    err = capsys.readouterr().err
    assert ("the native converter failed (exit status 1: cannot write x: "
            "No space)") in err
    with pytest.raises(ConvertError, match="native converter failed"):
        convert("criteo", str(src), str(tmp_path / "native"),
                engine="native", quiet=True)
    assert not (tmp_path / "native").exists()


def test_engine_flag_on_the_command_line(tmp_path, capsys):
    src = _criteo(tmp_path / "c.txt", n=100)
    for engine in ("native", "python"):
        assert main(["convert", "--format", "criteo", "--train", str(src),
                     "--out", str(tmp_path / engine), "--quiet",
                     "--engine", engine]) == 0
        assert f'"engine": "{engine}"' in capsys.readouterr().out
    assert read_tree(tmp_path / "native") == read_tree(tmp_path / "python")
    with pytest.raises(SystemExit):
        main(["convert", "--format", "criteo", "--train", str(src),
              "--out", str(tmp_path / "x"), "--engine", "fast"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_build_native_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFDSMLP_NATIVE_DIR", str(tmp_path / "cache"))
    assert main(["build-native"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == native.binary_path() and os.access(path, os.X_OK)
    assert path.startswith(str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert main(["build-native", "--quiet"]) == 0  # already built
    assert main(["build-native", "--force"]) == 1
    assert "no C compiler" in capsys.readouterr().err


def test_progress_bars_and_summary(tmp_path, capsys):
    src = _criteo(tmp_path / "c.txt", n=200)
    summary = convert("criteo", str(src), str(tmp_path / "out"),
                      split="8:1:1")
    err = capsys.readouterr().err
    assert "count vocab" in err and "write records" in err
    assert summary["engine"] == "native"
    assert sum(summary["rows"].values()) == 200


def test_crc32c_file_matches_reference(tmp_path):
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    rng = random.Random(0)
    for n in (0, 1, 7, 1023, 1024, 1025, 5000):
        data = bytes(rng.getrandbits(8) for _ in range(n))
        path = tmp_path / f"f{n}"
        path.write_bytes(data)
        want = f"{crc32c.crc32c(data):08x}"
        for per_read in (1, 3, 4096):
            assert crc32c.crc32c_file(str(path), block=1024,
                                      blocks_per_read=per_read) == want
        a, b = data[:n // 3], data[n // 3:]
        assert crc32c.crc32c_combine(crc32c.crc32c(a), crc32c.crc32c(b),
                                     len(b)) == crc32c.crc32c(data)
    # the checksum in dataset.json is this file CRC (checked against the
    # native converter by the same-bytes tests); it is not zlib's CRC-32
    assert crc32c.crc32c(b"abc") != zlib.crc32(b"abc")
