"""`train/run --progress lines`: a line every 30 s within an epoch (rows,
rate, ETA) and Keras' one line per epoch, for log files; the default when
stdout is not a terminal."""

from __future__ import annotations

import io
import re

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
    assert lines[-2].startswith("[distill] epoch 2/3: 32 rows, ")
    assert "50% of 64, ETA" in lines[-2]
    # after the epoch: its time and the most the phase has left
    assert re.fullmatch(r"\[distill\] epoch 2/3 took 0:00:00; at most 1 "
                        r"more epoch, 0:00:00 at this pace", lines[-1])
    # outside an epoch (e.g. a resumed fit's first call) it writes nothing
    cb.on_train_batch_end(0)
    assert stream.getvalue().splitlines() == lines


def test_the_epoch_line_bounds_what_the_phase_has_left(monkeypatch):
    clock = iter([100.0, 760.0, 1000.0, 1640.0])
    monkeypatch.setattr(
        "tfdsmlp.training.epoch_progress.time.monotonic", lambda: next(clock))
    stream = io.StringIO()
    cb = EpochProgress("teacher", steps=4, batch_size=16, epochs=30,
                       interval=1e9, stream=stream)
    cb.on_epoch_begin(2)
    cb.on_epoch_end(2)                  # 660 s for epoch 3 of 30
    assert stream.getvalue().splitlines()[-1] == (
        "[teacher] epoch 3/30 took 0:11:00; at most 27 more epochs, "
        "4:57:00 at this pace")
    cb.on_epoch_begin(29)
    cb.on_epoch_end(29)
    assert stream.getvalue().splitlines()[-1] == (
        "[teacher] epoch 30/30 took 0:10:40; the phase's last epoch")


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
    captured = capsys.readouterr()
    text = captured.out
    epochs = [line for line in text.splitlines() if " - val_auc: " in line]
    assert len(epochs) == 2, text
    bounds = [line for line in captured.err.splitlines() if " took " in line]
    assert [b.split(" took ")[0] for b in bounds] == [
        "[teacher] epoch 1/2", "[teacher] epoch 2/2"], captured.err
    assert bounds[0].endswith("at this pace")
    assert bounds[1].endswith("the phase's last epoch")
    assert "\b" not in text and "\r" not in text

