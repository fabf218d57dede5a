"""The fidelity study (paper section 4.3.3) on a tiny configuration."""

from __future__ import annotations

import json

import tfdsmlp  # noqa: F401
from tfdsmlp.experiments.fidelity import (
    COLUMNS,
    FidelityConfig,
    _rows_of,
    all_inputs,
    ground_truth,
    main,
    sample_rows,
)

import numpy as np
import pytest

TINY = {"vocab": 4, "rows": 3000, "valid_rows": 1000, "widths": (4, 8),
        "depth": 1, "embedding_dim": 4, "cross_layers": 2, "epochs": 2,
        "batch_size": 256}


def test_every_input_once_and_row_index():
    inputs = all_inputs(3)
    assert inputs.shape == (27, 3)
    assert len({tuple(r) for r in inputs.tolist()}) == 27
    assert inputs.min() == 2 and inputs.max() == 4    # ids 0, 1 reserved
    cfg = FidelityConfig(vocab=3)
    np.testing.assert_array_equal(_rows_of(inputs, cfg), np.arange(27))


def test_truth_is_standardised_and_seeded():
    cfg = FidelityConfig(**TINY)
    inputs, z = ground_truth(cfg)
    assert len(z) == 64
    assert z.mean() == pytest.approx(cfg.logit_mean, abs=1e-6)
    assert z.std() == pytest.approx(cfg.logit_std, rel=1e-6)
    _, again = ground_truth(cfg)
    np.testing.assert_allclose(z, again, rtol=1e-6)
    _, other = ground_truth(FidelityConfig(**{**TINY, "seed": 1}))
    assert np.max(np.abs(z - other)) > 0.1
    # Labels follow p*: rows of the likeliest inputs are mostly positive.
    x, y = sample_rows(inputs, z, 20000, np.random.default_rng(0))
    top = z[_rows_of(x, cfg)] > 1.5
    assert y[top].mean() > 0.75 and y[~top].mean() < y[top].mean()


def test_cli_writes_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "fid"
    assert main(["--out", str(out), "--widths", "4,8", "--vocab", "4",
                 "--rows", "3000", "--valid-rows", "1000", "--depth", "1",
                 "--embedding-dim", "4", "--cross-layers", "2",
                 "--epochs", "2"]) == 0
    result = json.loads((out / "fidelity.json").read_text())
    assert [r["width"] for r in result["widths"]] == [4, 8]
    for row in result["widths"]:
        assert set(row["mse"]) == set(COLUMNS)
        assert all(0.0 <= v < 1.0 for v in row["mse"].values())
        assert row["mse"]["cross"] == result["teacher"]["mse"]
        assert 1 <= row["epochs_distill"] <= 2
    assert "| 8 |" in capsys.readouterr().out
    assert (out / "fidelity.png").stat().st_size > 1000
    assert (out / "fidelity.md").read_text().startswith("| MLP width |")


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="widths"):
        FidelityConfig(widths=())
    with pytest.raises(SystemExit):
        main(["--out", "x", "--rows", "0"])
