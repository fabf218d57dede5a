"""`python -m tfdsmlp.experiments.convert_engines` on a tiny Criteo-shaped
file (the 45M-row measurement is a documented command, docs/SCALE.md)."""

from __future__ import annotations

import json
import sys

from tfdsmlp.experiments import convert_engines

import pytest


def test_run_command_reports_time_peak_rss_and_output():
    seconds, rss, out = convert_engines.run_command(
        [sys.executable, "-c", "print('ok')"])
    assert out.strip() == "ok" and seconds > 0 and rss > 1
    with pytest.raises(RuntimeError, match="exit 3.*boom"):
        convert_engines.run_command(
            [sys.executable, "-c",
             "import sys; print('boom', file=sys.stderr); sys.exit(3)"])


def test_times_the_python_engine_against_wc(tmp_path, capsys):
    from data_tools.synth_profile import write_profile

    write_profile(str(tmp_path / "raw"), "criteo", num_rows=300, seed=0,
                  valid_rows=10, test_rows=10, output="tsv", quiet=True)
    raw = str(tmp_path / "raw" / "train.txt")
    assert convert_engines.main(["--file", raw, "--out",
                                 str(tmp_path / "out"), "--engines",
                                 "python", "--min-count", "1"]) == 0
    with open(tmp_path / "out" / "convert_engines.json") as f:
        best = json.load(f)["best"]
    assert set(best) == {"wc -l", "convert --engine python"}
    assert best["wc -l"]["rows"] == best["convert --engine python"][
        "rows"] == 300
    assert best["convert --engine python"]["engine"] == "python"
    assert "| convert --engine python | 300 |" in capsys.readouterr().out


def test_unknown_engine_is_refused(tmp_path, capsys):
    f = tmp_path / "x.txt"
    f.write_text("1\n")
    with pytest.raises(SystemExit):
        convert_engines.main(["--file", str(f), "--out", str(tmp_path),
                              "--engines", "pyarrow"])
    assert "not data_tools engines" in capsys.readouterr().err
