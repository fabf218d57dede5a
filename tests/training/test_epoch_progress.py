"""`train/run --progress lines`: a line every 30 s within an epoch (rows,
rate, ETA) and Keras' one line per epoch, for log files; the default when
stdout is not a terminal."""

from __future__ import annotations

import io

from tfdsmlp import cli
from tfdsmlp.training.epoch_progress import EpochProgress

import pytest


def test_lines_give_the_epochs_rows_rate_and_eta():
    stream = io.StringIO()
    cb = EpochProgress("distill", steps=4, batch_size=16, epochs=3,
                       interval=0.0, stream=stream)
    cb.on_epoch_begin(1)
    for batch in range(2):
        cb.on_train_batch_end(batch)
    cb.on_epoch_end(1)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("[distill] epoch 2/3: 32 rows, ")
    assert "50% of 64, ETA" in lines[-1]
    # outside an epoch (e.g. a resumed fit's first call) it writes nothing
    cb.on_train_batch_end(0)
    assert stream.getvalue().splitlines() == lines


@pytest.mark.parametrize("argv, tty, verbose", [
    ([], False, 2),                       # a log file: lines
    ([], True, 1),                        # a terminal: the bar
    (["--progress", "bar"], False, 1),
    (["--progress", "none"], True, 0),
    (["--quiet"], True, 0),
])
def test_the_default_follows_the_output(monkeypatch, argv, tty, verbose):
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    args = cli.build_parser().parse_args(
        ["train", "--data", "D", "--model", "dnn", "--out", "O", *argv])
    assert cli._progress_verbose(args) == verbose


def test_quiet_and_progress_are_one_choice(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(
            ["run", "--data", "D", "--teacher", "dnn", "--out", "O",
             "--quiet", "--progress", "lines"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_run_logs_a_line_per_epoch(tiny_dataset_dir, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "--data", tiny_dataset_dir, "--model", "dnn",
                     "--preset", "synthetic", "--set", "train.epochs=2",
                     "--set", "train.check_learned=false",
                     "--progress", "lines", "--out", out]) == 0
    text = capsys.readouterr().out
    epochs = [line for line in text.splitlines() if " - val_auc: " in line]
    assert len(epochs) == 2, text
    assert "\b" not in text and "\r" not in text

