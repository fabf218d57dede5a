"""The planted teacher of `synth --profile`: a random CTR model whose
probabilities are the labels' true ones, and the Bayes metrics they give.

Every (field, token) has hidden parameters computed from a hash of (seed,
field, token code) (hashrng: splitmix64 -> uniforms -> Box-Muller), so no
table of millions of tokens is stored: a first-order weight w ~ N(0, 1)
and an embedding e in R^8 ~ N(0, I), both times a per-field scale
s_f = exp(N(0, 0.5^2)); a missing cell has w = e = 0. With x0 the
concatenated embeddings (F fields x 8),

    first  = sum_f w_f
    cross  = c . (x_3 - x0),  x_{l+1} = x0 * (W_l x_l + b_l)
                                        * sigmoid(G_l x_l + g_l) + x_l
             (GDCN gated cross network, 3 layers; W_l, G_l of rank 32)
    mlp    = v . relu(A2 relu(A1 x0 + a1) + a2)   (64 and 32 units)
    z      = bias + k1 first + k2 cross + k3 mlp
    y      ~ Bernoulli(sigmoid(z))

The k's give part p the standard deviation sqrt(share_p) * SIGMA (SHARES
by default; `shares_for(cross_share)` moves the cross part's share and
splits the rest between the other two in SHARES' proportion; so the
shares of the variance of z, whose standard deviation is about SIGMA
as the parts are nearly uncorrelated), and the bias makes the mean
probability the profile's positive rate; both are fitted on
CALIBRATION_ROWS rows of a separate stream. Rows are processed in blocks
of BLOCK rows aligned to the split's first row, so every matrix product
sees the same operands whatever the chunk size of the caller (with one
BLAS thread, see synth_rows.ChunkSource, the results are then the same).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from data_tools import hashrng
from data_tools.synth_columns import TeacherField

DIM = 8
CROSS_LAYERS = 3
CROSS_RANK = 32
HIDDEN = (64, 32)
SHARES = {"first_order": 0.3, "cross": 0.4, "mlp": 0.3}
PARTS = ("first_order", "cross", "mlp")
SIGMA = 1.9
FIELD_SCALE_SIGMA = 0.5
BLOCK = 2048
CALIBRATION_ROWS = 1 << 16
TABLE_MAX = 1 << 18  # fields with at most this many indices: a lookup table


def shares_for(cross_share: float | None) -> dict[str, float]:
    """Variance shares with the cross part's set to `cross_share` (in
    [0, 1)); the first-order and MLP parts split the rest as in SHARES.
    None: SHARES."""
    if cross_share is None:
        return dict(SHARES)
    if not 0.0 <= cross_share < 1.0:
        raise ValueError(f"--cross-share should be in [0, 1) (the cross "
                         f"part's share of the logit variance). Received: "
                         f"{cross_share}")
    rest = SHARES["first_order"] + SHARES["mlp"]
    return {"first_order": SHARES["first_order"] / rest * (1 - cross_share),
            "cross": cross_share,
            "mlp": SHARES["mlp"] / rest * (1 - cross_share)}


class PlantedTeacher:
    """The hidden model over `fields`; `raw_parts` then `calibrate`, then
    `logits`. `shares`: the parts' shares of the logit variance (SHARES
    when None; see `shares_for`)."""

    def __init__(self, fields: Sequence[TeacherField], seed: int,
                 shares: dict[str, float] | None = None) -> None:
        self.fields = list(fields)
        self.seed = seed
        self.shares = dict(SHARES if shares is None else shares)
        rng = np.random.default_rng(hashrng.stream_key(seed, "teacher"))
        f, d = len(self.fields), DIM * len(self.fields)
        self.field_scale = np.exp(rng.normal(0, FIELD_SCALE_SIGMA, f))

        def low_rank() -> tuple[np.ndarray, np.ndarray]:
            """W = P Q (d x r times r x d), kept factored: 2 d r
            multiply-adds per row instead of d^2 (5x fewer for Criteo)."""
            return (rng.normal(0, d ** -0.5, (d, CROSS_RANK)).astype(
                np.float32), rng.normal(0, CROSS_RANK ** -0.5, (
                    CROSS_RANK, d)).astype(np.float32))

        self.cross = [(low_rank(), rng.normal(0, 0.5, d).astype(np.float32),
                       low_rank(), rng.normal(0, 0.5, d).astype(np.float32))
                      for _ in range(CROSS_LAYERS)]
        self.cross_out = rng.normal(0, d ** -0.5, d).astype(np.float32)
        sizes = (d, *HIDDEN)
        self.mlp = [(rng.normal(0, (2 / a) ** 0.5, (a, b)).astype(np.float32),
                     rng.normal(0, 0.5, b).astype(np.float32))
                    for a, b in itertools.pairwise(sizes)]
        self.mlp_out = rng.normal(0, HIDDEN[-1] ** -0.5, HIDDEN[-1])
        self.scales = np.ones(3)
        self.bias = 0.0
        self._tables: dict[int, np.ndarray] = {}

    # ----------------------------------------------------- hidden params
    def _key(self, i: int) -> int:
        return hashrng.stream_key(self.seed, "teacher", self.fields[i].name)

    def _params(self, i: int, idx: np.ndarray) -> np.ndarray:
        """(w, e_1..e_8) of field i's indices (float32, zeros if -1)."""
        field = self.fields[i]
        if field.domain <= TABLE_MAX:
            table = self._tables.get(i)
            if table is None:
                table = np.zeros((field.domain + 1, 1 + DIM), np.float32)
                table[:-1] = self._hashed(i, field.code(np.arange(
                    field.domain)))
                self._tables[i] = table
            return table[idx]  # -1 -> the zero row
        out = np.zeros((idx.shape[0], 1 + DIM), np.float32)
        present = idx >= 0
        out[present] = self._hashed(i, field.code(idx[present]))
        return out

    def _hashed(self, i: int, codes: np.ndarray) -> np.ndarray:
        return hashrng.normals(self._key(i), codes, 1 + DIM) * \
            self.field_scale[i]

    # ------------------------------------------------------------ model
    def raw_parts(self, idx: np.ndarray) -> np.ndarray:
        """(n, 3) float64: first-order, cross and MLP parts before scaling;
        `idx` is (n, fields) int64, -1 missing."""
        out = np.empty((idx.shape[0], 3))
        for lo in range(0, idx.shape[0], BLOCK):
            out[lo:lo + BLOCK] = self._block(idx[lo:lo + BLOCK])
        return out

    def _block(self, idx: np.ndarray) -> np.ndarray:
        return self._forward(np.stack([self._params(i, idx[:, i])
                                       for i in range(len(self.fields))],
                                      axis=1))

    width = 1 + DIM  # hidden parameters per (field, token): w, e_1..e_8

    def token_params(self, i: int, tokens: Sequence[bytes]) -> np.ndarray:
        """(len(tokens), 1 + DIM) hidden parameters of field i's converted
        tokens (non-empty bytes, as in a dataset's vocabulary)."""
        field = self.fields[i]
        codes = np.array([field.token_code(t) for t in tokens],
                         dtype=np.uint64)
        return self._hashed(i, codes).astype(np.float32)

    def logits_of_params(self, params: np.ndarray) -> np.ndarray:
        """True logits of (n, fields, 1 + DIM) hidden parameters."""
        return self.logits(self._forward(params))

    def logits_of_tokens(self, rows: Sequence[Sequence[bytes]]
                         ) -> np.ndarray:
        """True logits of rows of tokens (in field order, b"" = missing),
        e.g. a converted dataset's rows decoded back to raw tokens: the
        teacher's parameters are functions of the tokens."""
        n, out = len(rows), np.empty(len(rows))
        for lo in range(0, n, BLOCK):
            block = rows[lo:lo + BLOCK]
            params = np.zeros((len(block), len(self.fields), self.width),
                              np.float32)
            for i in range(len(self.fields)):
                at = [r for r, row in enumerate(block) if row[i]]
                params[at, i] = self.token_params(i, [block[r][i]
                                                      for r in at])
            out[lo:lo + BLOCK] = self.logits_of_params(params)
        return out

    def _forward(self, params: np.ndarray) -> np.ndarray:
        """(n, 3) raw parts from (n, fields, 1 + DIM) hidden parameters."""
        n = params.shape[0]
        first = params[:, :, 0].astype(np.float64).sum(1)
        x0 = np.ascontiguousarray(params[:, :, 1:]).reshape(n, -1)
        x = x0
        for (wp, wq), b, (gp, gq), gb in self.cross:
            gate = (x @ gp) @ gq
            gate += gb
            np.negative(gate, out=gate)
            with np.errstate(over="ignore"):  # exp -> inf: gate 0, fine
                np.exp(gate, out=gate)
            gate += 1.0
            h = (x @ wp) @ wq
            h += b
            h *= x0
            h /= gate
            x = x + h
        cross = (x - x0) @ self.cross_out
        h = x0
        for w, b in self.mlp:
            h = h @ w
            h += b
            np.maximum(h, 0.0, out=h)
        mlp = h.astype(np.float64) @ self.mlp_out
        return np.stack([first, cross.astype(np.float64), mlp], axis=1)

    def calibrate(self, parts: np.ndarray, positive_rate: float) -> None:
        """Scales each part to its variance share and fits the bias."""
        std = parts.std(axis=0)
        share = np.array([self.shares[k] for k in PARTS])
        self.scales = SIGMA * np.sqrt(share) / np.where(std > 0, std, 1.0)
        z = parts @ self.scales
        lo, hi = -30.0, 30.0
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if np.mean(1.0 / (1.0 + np.exp(-(mid + z)))) < positive_rate:
                lo = mid
            else:
                hi = mid
        self.bias = 0.5 * (lo + hi)
        self.calibration = {
            "rows": int(parts.shape[0]), "bias": round(self.bias, 6),
            "scales": [round(float(s), 6) for s in self.scales],
            "part_std": [round(float(s), 4) for s in std * self.scales],
            "logit_std": round(float((z + self.bias).std()), 4)}

    def logits(self, parts: np.ndarray) -> np.ndarray:
        return self.bias + parts @ self.scales

    def describe(self) -> dict[str, object]:
        return {
            "formula": "z = bias + k1*sum_f w_f + k2*c.(x_L - x0) + "
                       "k3*v.relu(A2 relu(A1 x0 + a1) + a2); x_{l+1} = x0 * "
                       "(W_l x_l + b_l) * sigmoid(G_l x_l + g_l) + x_l; "
                       "y ~ Bernoulli(sigmoid(z))",
            "hidden_params": "per (field, token): w ~ N(0,1), e ~ N(0, I_8), "
                             "times s_f = exp(N(0, 0.5^2)); from "
                             "splitmix64(seed, field, token code); "
                             "missing -> 0",
            "fields": [f.name for f in self.fields],
            "embedding_dim": DIM, "cross_layers": CROSS_LAYERS,
            "cross_rank": CROSS_RANK, "mlp_hidden": list(HIDDEN),
            "variance_shares": self.shares, "logit_sigma": SIGMA,
            "field_scale": [round(float(s), 4) for s in self.field_scale],
            "calibration": getattr(self, "calibration", None)}


class BayesMeter:
    """Streaming metrics of the true probabilities of one split: positive
    count, logloss (per-block sums added exactly with math.fsum, so the
    result does not depend on the chunking) and a histogram of the logits
    per label for the AUC (HIST_BINS bins over [-HIST_RANGE, HIST_RANGE])."""

    HIST_BINS = 1 << 20
    HIST_RANGE = 16.0

    def __init__(self) -> None:
        self.rows = self.positives = 0
        self._loss_sums: list[float] = []
        self.hist = np.zeros((2, self.HIST_BINS), dtype=np.int64)

    def add(self, z: np.ndarray, y: np.ndarray) -> None:
        """z: float64 logits, y: 0/1 labels of rows that start at a
        multiple of BLOCK within the split."""
        loss = np.logaddexp(0.0, z) - y * z
        self._loss_sums.extend(np.add.reduceat(
            loss, np.arange(0, len(z), BLOCK)).tolist())
        self.rows += len(z)
        self.positives += int(y.sum())
        width = 2 * self.HIST_RANGE / self.HIST_BINS
        b = np.clip(((z + self.HIST_RANGE) / width).astype(np.int64), 0,
                    self.HIST_BINS - 1)
        for label in (0, 1):
            self.hist[label] += np.bincount(b[y == label],
                                            minlength=self.HIST_BINS)

    @property
    def logloss(self) -> float:
        return math.fsum(self._loss_sums) / max(self.rows, 1)

    def histogram_auc(self) -> tuple[float, float]:
        """(AUC, its largest possible error): pairs within one bin count
        one half; the error is at most half their share."""
        neg, pos = self.hist.astype(np.float64)
        n_neg, n_pos = neg.sum(), pos.sum()
        if n_neg == 0 or n_pos == 0:
            return float("nan"), 0.0
        below = np.cumsum(neg) - neg
        tied = float((pos * neg).sum())
        auc = (float((pos * below).sum()) + 0.5 * tied) / (n_pos * n_neg)
        return auc, 0.5 * tied / (n_pos * n_neg)
