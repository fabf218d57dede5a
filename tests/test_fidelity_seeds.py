"""The fidelity study over seeds: summary figures, reuse and refusals."""

from __future__ import annotations

import json

import tfdsmlp  # noqa: F401
from tfdsmlp.experiments import fidelity_seeds
from tfdsmlp.experiments.fidelity import COLUMNS, main
from tfdsmlp.experiments.fidelity_seeds import markdown_seeds, summarize

import pytest

TINY_ARGS = ["--widths", "4", "--vocab", "4", "--rows", "2000",
             "--valid-rows", "500", "--depth", "1", "--embedding-dim", "4",
             "--cross-layers", "1", "--epochs", "1"]


def _study(seed: int, mse: dict[str, float], vs_cross: float,
           epochs: int = 20) -> dict:
    return {"config": {"seed": seed, "epochs": epochs, "widths": [16]},
            "widths": [{"width": 16, "mse": mse,
                        "main1_vs_cross_mse": vs_cross}]}


def test_summary_means_stds_and_paired_kd_effect():
    a = dict.fromkeys(COLUMNS, 0.01) | {"main1": 0.008, "main1_nokd": 0.005}
    b = dict.fromkeys(COLUMNS, 0.03) | {"main1": 0.006, "main1_nokd": 0.007}
    s = summarize([_study(0, a, 0.001), _study(1, b, 0.003)])
    assert s["seeds"] == [0, 1]
    assert s["settings"] == {"epochs": 20, "widths": [16]}
    row = s["widths"][0]
    assert row["mean"]["cross"] == pytest.approx(0.02)
    assert row["std"]["cross"] == pytest.approx(0.01)        # numpy's std
    # Paired seed by seed: +0.003 and -0.001.
    assert row["values"]["kd_effect"] == pytest.approx([0.003, -0.001])
    assert row["mean"]["kd_effect"] == pytest.approx(0.001)
    assert row["std"]["kd_effect"] == pytest.approx(0.002)
    assert row["mean"]["main1_vs_cross"] == pytest.approx(0.002)
    table = markdown_seeds(s)
    assert table.splitlines()[0].endswith("| kd_effect | main1_vs_cross |")
    assert "| 16 | 0.02000 ± 0.01000 |" in table


def test_summary_refuses_studies_of_other_settings():
    a = dict.fromkeys(COLUMNS, 0.01)
    with pytest.raises(ValueError, match="epochs=5"):
        summarize([_study(0, a, 0.0), _study(1, a, 0.0, epochs=5)])


def _fake_study(cfg, log=print):
    """run_fidelity's result shape, figures from the seed (the real study
    is run by tests/test_fidelity.py)."""
    import dataclasses

    log(f"[fidelity] fake study of seed {cfg.seed}")
    mse = {c: 0.01 * (cfg.seed + 1) + 0.001 * i
           for i, c in enumerate(COLUMNS)}
    return {"config": dataclasses.asdict(cfg), "truth": {}, "teacher": {},
            "widths": [{"width": w, "mse": mse, "main1_vs_cross_mse": 0.001}
                       for w in cfg.widths]}


def test_cli_runs_each_seed_once_then_reads_them_back(tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.setattr(fidelity_seeds, "run_fidelity", _fake_study)
    out = tmp_path / "fid"
    assert main(["--out", str(out), "--seeds", "0,1"] + TINY_ARGS) == 0
    for seed in (0, 1):
        one = json.loads((out / f"seed_{seed}" / "fidelity.json").read_text())
        assert one["config"]["seed"] == seed
        assert (out / f"seed_{seed}" / "fidelity.md").exists()
    summary = json.loads((out / "fidelity_seeds.json").read_text())
    assert summary["seeds"] == [0, 1]
    assert summary["widths"][0]["mean"]["cross"] == pytest.approx(0.015)
    assert (out / "fidelity_seeds.png").stat().st_size > 1000
    first = capsys.readouterr().out
    assert "| 4 | 0.01500 ± 0.00500 |" in first
    assert "seed 0 took" in first and "ETA of the 1 left" in first

    def no_training(*a, **k):
        raise AssertionError("a finished seed was run again")

    monkeypatch.setattr(fidelity_seeds, "run_fidelity", no_training)
    assert main(["--out", str(out), "--seeds", "1,0"] + TINY_ARGS) == 0
    assert "read" in capsys.readouterr().out
    again = json.loads((out / "fidelity_seeds.json").read_text())
    assert again["seeds"] == [1, 0]
    assert again["widths"][0]["values"]["cross"] == list(reversed(
        summary["widths"][0]["values"]["cross"]))

    # Other settings on the same --out: refused, naming file and setting.
    other = [a if a != "500" else "600" for a in TINY_ARGS]
    assert main(["--out", str(out), "--seeds", "0"] + other) == 2
    err = capsys.readouterr().err
    assert "seed_0/fidelity.json" in err and "valid_rows=500" in err
    # A seed directory holding another seed's study is refused too.
    (out / "seed_5").mkdir()
    (out / "seed_5" / "fidelity.json").write_text(
        (out / "seed_0" / "fidelity.json").read_text())
    assert main(["--out", str(out), "--seeds", "5"] + TINY_ARGS) == 2
    assert "seed 0, not 5" in capsys.readouterr().err


def test_seeds_flag_checks():
    with pytest.raises(SystemExit):
        main(["--out", "x", "--seeds", "0", "--seed", "1"])
    with pytest.raises(SystemExit):
        main(["--out", "x", "--seeds", "0,a"])
    with pytest.raises(ValueError, match="distinct"):
        fidelity_seeds.run_seeds(fidelity_seeds.FidelityConfig(), (1, 1),
                                 "x")
