"""`python -m tfdsmlp tune`: every flag is explained; bad input is a
usage error (exit 2) before any work; `--preset` takes a preset file."""

from __future__ import annotations

import os

from tfdsmlp import cli
from tfdsmlp.config import ConfigError
from tfdsmlp.training.presets import build_run_config

import pytest


def _tune_parser():
    sub = next(a for a in cli.build_parser()._actions
               if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["tune"]


def test_every_tune_flag_has_help():
    parser = _tune_parser()
    flags = {o for a in parser._actions for o in a.option_strings}
    assert {"--data", "--model", "--trials", "--time-budget", "--preset",
            "--set", "--out", "--seed", "--pruner", "--quiet"} <= flags
    for action in parser._actions:
        assert action.help and len(action.help) > 15, action.option_strings
    assert "best.yaml" in parser.description


def test_unknown_model_is_a_usage_error(tiny_dataset_dir, tmp_path, capsys):
    out = str(tmp_path / "study")
    assert cli.main(["tune", "--data", tiny_dataset_dir, "--model", "gdnc",
                     "--out", out, "--quiet"]) == 2
    assert "Valid models" in capsys.readouterr().err
    assert not os.path.exists(out)


def test_preset_file_with_an_unknown_key_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("train: {epochs: 1}\nmodel: {gdcn: {}}\n")
    with pytest.raises(ConfigError, match="unknown preset key"):
        build_run_config(str(path), "gdcn")
    path.write_text("train: {epochs: 1}\nmodels: {gdcn: {dropout: 0.3}}\n")
    cfg = build_run_config(str(path), "gdcn")
    assert cfg.teacher.params["dropout"] == 0.3
    assert cfg.teacher.train.epochs == 1
