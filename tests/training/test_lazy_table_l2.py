"""LazyAdamTableL2: its lazily applied L2 follows its row-by-row rule (NumPy),
dense variables get none, config, and a resumed fit matches an
uninterrupted one."""

import tfdsmlp  # noqa: F401
from tfdsmlp.models.registry import build_model
from tfdsmlp.training.fit import compile_ctr_model, fit_phase, make_optimizer
from tfdsmlp.training.lazy_adam import LazyAdam
from tfdsmlp.training.lazy_table_l2 import LazyAdamTableL2
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import pytest
import tensorflow as tf
from lazy_reference import EPS, alpha, lazy_adam_rows


def _lazy_reference(table, steps, lr, l2, settle_at):
    """NumPy, row by row: a row looked up at step t first shrinks by
    (1 - alpha_t * l2 / (sqrt(v) + eps)) per step it was absent (v: its
    second moment when last looked up), then gets LazyAdam's update;
    finally every row catches up to step `settle_at`."""

    def shrink(w, m, v, r, t, gap):
        keep = np.maximum(0.0, 1 - alpha(lr, t) * l2 / (np.sqrt(v[r]) + EPS))
        w[r] *= keep ** gap

    return lazy_adam_rows(table, steps, lr, shrink, settle_at)


def test_lazy_l2_matches_its_row_by_row_rule():
    table = np.arange(10, dtype=np.float32).reshape(5, 2) / 10 + 0.5
    g = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    steps = [([3, 1], g), ([3], g[:1]), ([4], g[1:]), ([1], g[:1]),
             ([3], g[1:])]
    var = tf.Variable(table)
    opt = LazyAdamTableL2(learning_rate=0.1, table_l2=0.05)
    for rows, grad in steps:
        opt.apply_gradients([(tf.IndexedSlices(tf.constant(grad),
                                               tf.constant(rows)), var)])
    # Before settling, rows 0 and 2 (never looked up) are untouched.
    np.testing.assert_array_equal(var.numpy()[[0, 2]], table[[0, 2]])
    opt.settle()
    ref = _lazy_reference(table, steps, lr=0.1, l2=0.05, settle_at=5)
    np.testing.assert_allclose(var.numpy(), ref, rtol=1e-5)
    # A row never looked up (v = 0) is wiped: 1 - alpha * l2 / eps < 0.
    np.testing.assert_array_equal(var.numpy()[[0, 2]], 0.0)
    # Row 4 (small gradients, so small v) shrank more per absent step than
    # row 1 (large gradients): the decay is stronger the rarer the row.
    before = var.numpy().copy()
    for _ in range(3):
        opt.apply_gradients([(tf.IndexedSlices(tf.constant(g[:1]),
                                               tf.constant([3])), var)])
    opt.settle()
    after = var.numpy()
    assert after[4, 0] / before[4, 0] < after[1, 0] / before[1, 0] < 1.0
    opt.settle()  # idempotent
    np.testing.assert_array_equal(var.numpy(), after)


def test_dense_gradients_get_lazy_adam_and_no_decay():
    var, ref = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    for opt, v in ((LazyAdamTableL2(0.01, table_l2=3.0), var),
                   (LazyAdam(0.01), ref)):
        for _ in range(3):
            opt.apply_gradients([(tf.constant([0.3, -0.7]), v)])
        if isinstance(opt, LazyAdamTableL2):
            opt.settle()
    np.testing.assert_allclose(var.numpy(), ref.numpy(), rtol=1e-6)


def test_config_roundtrip_and_bad_arguments(tiny_spec):
    opt = LazyAdamTableL2(learning_rate=0.02, table_l2=0.25,
                          global_clipnorm=10.0)
    again = tf.keras.optimizers.deserialize(
        tf.keras.optimizers.serialize(opt))
    assert isinstance(again, LazyAdamTableL2)
    assert again.table_l2 == 0.25 and again.global_clipnorm == 10.0
    with pytest.raises(ValueError, match="table_l2=0"):
        LazyAdamTableL2(table_l2=0)
    lazy = build_model("dnn", {"embedding_l2": 0.1,
                               "embedding_l2_scope": "lazy"}, tiny_spec)
    opt = make_optimizer(TrainConfig(optimizer="lazy_adam"), lazy)
    assert isinstance(opt, LazyAdamTableL2) and opt.table_l2 == 0.1
    with pytest.raises(ValueError, match="lazy` applies the whole-table"):
        make_optimizer(TrainConfig(), lazy)
    no_l2 = build_model("dnn", {"embedding_l2_scope": "lazy"}, tiny_spec)
    assert type(make_optimizer(TrainConfig(), no_l2)).__name__ == "Adam"
    assert type(make_optimizer(TrainConfig(optimizer="lazy_adam"),
                               no_l2)) is LazyAdam
    table = build_model("dnn", {"embedding_l2": 0.1}, tiny_spec)
    with pytest.raises(ValueError, match="Set `embedding_l2_scope: lazy`"):
        make_optimizer(TrainConfig(optimizer="lazy_adam"), table)


def test_lazy_scope_adds_the_batch_rows_term(tiny_spec, tiny_batch):
    x, _ = tiny_batch
    losses = {}
    for scope in ("batch", "lazy"):
        tf.keras.utils.set_random_seed(0)
        model = build_model("dnn", {"embedding_l2": 0.1,
                                    "embedding_l2_scope": scope}, tiny_spec)
        model(x)
        losses[scope] = float(tf.add_n(model.losses))
    assert losses["lazy"] == pytest.approx(losses["batch"]) and \
        losses["lazy"] > 0


def _fit(data_dir, spec, backup_dir, epochs, optimizer="lazy_adam"):
    cfg = TrainConfig(optimizer=optimizer, learning_rate=0.01,
                      batch_size=32, epochs=epochs, steps_per_epoch=4,
                      patience=5, check_learned=False, shuffle_buffer=1000)
    model = build_model("dnn", {"hidden_units": [8], "dropout": 0.0,
                                "embedding_l2": 0.1,
                                "embedding_l2_scope": "lazy"}, spec)
    compile_ctr_model(model, cfg)
    fit_phase(model, data_dir, cfg, backup_dir=str(backup_dir), verbose=0)
    return model


@pytest.mark.parametrize("optimizer", ["lazy_adam", "catch_up_adam"])
def test_fit_settles_each_epoch_and_resumes_exactly(tiny_dataset_dir,
                                                     tiny_spec, tmp_path,
                                                     optimizer):
    """LazyAdamTableL2 and its subclass CatchUpAdam (whose moments also
    catch up) under `fit_phase`."""
    whole = _fit(tiny_dataset_dir, tiny_spec, tmp_path / "whole", 2,
                 optimizer)
    opt = whole.optimizer
    assert type(opt).__name__ == {"lazy_adam": "LazyAdamTableL2",
                                  "catch_up_adam": "CatchUpAdam"}[optimizer]
    ((_, mark),) = opt._marks.values()
    # Settled at the last epoch end: every row is up to date.
    np.testing.assert_array_equal(mark.numpy(), float(opt.iterations))
    _fit(tiny_dataset_dir, tiny_spec, tmp_path / "split", 1, optimizer)
    resumed = _fit(tiny_dataset_dir, tiny_spec, tmp_path / "split", 2,
                   optimizer)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
