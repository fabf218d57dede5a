"""The arithmetic and /proc readers of `tfdsmlp.experiments.ps_scale` (the
parameter-server measurement itself is a benchmark, docs/SCALING.md)."""

from __future__ import annotations

import os

from tfdsmlp.experiments import ps_scale
from tfdsmlp.features import FeatureSpec, FieldSpec

import pytest

NET_DEV = """\
Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes
    lo: 123456     789    0    0    0     0          0         0   123456
  eth0: 999 9 0 0 0 0 0 0 111 1 0 0 0 0 0 0
"""


def test_loopback_bytes_reads_the_lo_receive_counter():
    assert ps_scale.loopback_bytes(NET_DEV) == 123456
    with pytest.raises(RuntimeError, match="no `lo` interface"):
        ps_scale.loopback_bytes(NET_DEV.replace("lo:", "xx:"))


def test_rss_of_this_process_and_of_none():
    assert ps_scale.rss_mib(os.getpid()) > 1
    assert ps_scale.rss_mib(2 ** 22 + 7) == 0.0


def test_expected_bytes_per_step():
    # 2 x (4096 x 8 x 16 x 4 B) rows and gradients + 2 x 1000 x 4 B.
    got = ps_scale.expected_bytes_per_step(4096, 8, 16, 1000)
    assert got == {"sparse": 4_194_304, "dense": 8000,
                   "total": 4_202_304}


def test_epoch_figures_skip_the_first_epoch():
    epochs = [{"start": 0, "end": 10, "lo_start": 0, "lo_end": 5000},
              {"start": 10, "end": 12, "lo_start": 5000, "lo_end": 5400},
              {"start": 12, "end": 16, "lo_start": 5400, "lo_end": 6200}]
    got = ps_scale.epoch_figures(epochs, steps=4, batch=100)
    assert got["examples_per_s"] == pytest.approx(2 * 4 * 100 / 6)
    assert got["bytes_per_step"] == pytest.approx(1200 / 8)
    assert got["epoch_seconds"] == [10, 2, 4]


def test_sized_spec_grows_only_categorical_tables():
    spec = FeatureSpec((FieldSpec("a", "categorical", 10),
                        FieldSpec("b", "categorical", 500),
                        FieldSpec("x", "numeric", 0)))
    sized = ps_scale.sized_spec(spec, 600)
    assert [f.vocab_size for f in sized.fields] == [300, 500, 0]
    assert [f.name for f in sized.fields] == ["a", "b", "x"]


def test_cases_are_checked(capsys):
    with pytest.raises(SystemExit):
        ps_scale.main(["--out", "x", "--cases", "mirrored:10"])
    assert "strategy:ids" in capsys.readouterr().err
