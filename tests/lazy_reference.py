"""NumPy references for the lazy optimizers, row by row: LazyAdam's update
of each looked-up row, preceded by a catch-up rule for the steps the row
was absent (`LazyAdamTableL2`'s L2 pull, `CatchUpAdam`'s Adam replay)."""

import numpy as np

B1, B2, EPS = 0.9, 0.999, 1e-7


def alpha(lr, t):
    """Adam's bias-corrected step size at step t."""
    return lr * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)


def lazy_adam_rows(table, steps, lr, catch_up, settle_at):
    """The table after `steps` ([(rows, gradients)]) of LazyAdam, a row
    looked up at step t first given `catch_up(w, m, v, r, t, gap)` (which
    updates row r of the arrays in place for its `gap` absent steps),
    then every row caught up to step `settle_at`."""
    w = table.astype(np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    mark = np.zeros(len(w), int)
    for t, (rows, g) in enumerate(steps, start=1):
        for r, gr in zip(rows, g):
            catch_up(w, m, v, r, t, t - 1 - mark[r])
            mark[r] = t
            m[r] = B1 * m[r] + (1 - B1) * gr
            v[r] = B2 * v[r] + (1 - B2) * gr ** 2
            w[r] -= alpha(lr, t) * m[r] / (np.sqrt(v[r]) + EPS)
    for r in range(len(w)):
        catch_up(w, m, v, r, settle_at + 1, settle_at - mark[r])
    return w
