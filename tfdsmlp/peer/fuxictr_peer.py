"""The FuxiCTR side of `python -m tfdsmlp bench --peer fuxictr`.

Runs as a plain script in the peer environment (`make peer`: PyTorch CPU
build + FuxiCTR, never TensorFlow or tfdsmlp), so it imports nothing from
this package. It reads the batches and the model settings that the
TensorFlow side wrote (`tfdsmlp.peer.batches`), builds the model from
FuxiCTR's own layers (`FeatureEmbedding`, `MLP_Block`, `CrossNetV2`,
`CompressedInteractionNet`, `FactorizationMachine`) on FuxiCTR's `BaseModel`
and times:

- training with `BaseModel.train_step` (zero_grad, forward, BCE + the
  whole-table embedding L2 of `regularization_loss`, backward, gradient-norm
  clip 10, Adam), the loop FuxiCTR's `fit` runs, on the cached batches:
  the best of `--passes` passes of `--steps` steps after a warm-up;
- inference (`model.eval()`, `torch.inference_mode`) at the batch size
  (examples/s) and at batch 1 (p50 / p99 ms).

The pip package has no model zoo, so the heads FuxiCTR keeps there are
written here from the zoo's formulas (`model_zoo/GDCN`, `FinalMLP`,
`DualMLP`-style DS-MLP): GDCN's gated cross layer
`c_{l+1} = c_0 * (W_l c_l + b_l) * sigmoid(W_g c_l) + c_l`, FinalMLP's
feature-selection gates and bilinear fusion. `finalmlp` fuses as the zoo
does (per-example copies of the bilinear weight through `matmul` on
broadcast views); `finalmlp_einsum` computes the same sum with one einsum,
the fair peer for tfdsmlp's `BilinearFusion`.

Output: one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from fuxictr.features import FeatureMap
from fuxictr.pytorch.layers import (
    CompressedInteractionNet,
    CrossNetV2,
    FactorizationMachine,
    FeatureEmbedding,
    LogisticRegression,
    MLP_Block,
)
from fuxictr.pytorch.models import BaseModel
from torch import nn


def feature_map(vocab_sizes: list[int], num_numeric: int) -> FeatureMap:
    fmap = FeatureMap("peer", ".")
    for i, vocab in enumerate(vocab_sizes):
        fmap.features[f"c{i}"] = {"type": "categorical", "source": "",
                                  "vocab_size": int(vocab), "padding_idx": 0}
    for j in range(num_numeric):
        fmap.features[f"n{j}"] = {"type": "numeric", "source": ""}
    fmap.labels = ["label"]
    fmap.num_fields = fmap.get_num_fields()
    return fmap


def mlp(input_dim: int, p: dict, prefix: str = "", output_dim=None):
    return MLP_Block(input_dim=input_dim,
                     hidden_units=p[f"{prefix}hidden_units"],
                     hidden_activations="ReLU", output_dim=output_dim,
                     dropout_rates=p.get(f"{prefix}dropout", 0.0),
                     batch_norm=p.get(f"{prefix}batch_norm", False))


class GatedCross(nn.Module):
    """GDCN's gated cross network (FuxiCTR model_zoo/GDCN)."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.w = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.wg = nn.ModuleList(nn.Linear(dim, dim, bias=False)
                                for _ in range(layers))

    def forward(self, x0):
        x = x0
        for w, wg in zip(self.w, self.wg):
            x = x0 * w(x) * torch.sigmoid(wg(x)) + x
        return x


class FeatureSelection(nn.Module):
    """FinalMLP's gate: 2 * sigmoid(MLP(context)) * flat (model_zoo)."""

    def __init__(self, fmap: FeatureMap, flat_dim: int,
                 ctx_fields: list[int], dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.ctx_emb = (FeatureEmbedding(
            fmap, dim, required_feature_columns=[f"c{i}" for i in ctx_fields])
            if ctx_fields else None)
        self.bias = (None if ctx_fields
                     else nn.Parameter(torch.zeros(1, dim)))
        self.gate = MLP_Block(input_dim=dim * max(1, len(ctx_fields)),
                              output_dim=flat_dim, hidden_units=hidden,
                              hidden_activations="ReLU",
                              output_activation="Sigmoid", batch_norm=False)

    def forward(self, x, flat):
        if self.ctx_emb is not None:
            ctx = self.ctx_emb(x, flatten_emb=True)
        else:
            ctx = self.bias.repeat(flat.size(0), 1)
        return flat * self.gate(ctx) * 2


class Fusion(nn.Module):
    """FinalMLP's multi-head bilinear fusion (output_dim 1)."""

    def __init__(self, x_dim: int, y_dim: int, heads: int,
                 einsum: bool) -> None:
        super().__init__()
        self.heads, self.einsum = heads, einsum
        self.hx, self.hy = x_dim // heads, y_dim // heads
        self.w_x, self.w_y = nn.Linear(x_dim, 1), nn.Linear(y_dim, 1)
        self.w_xy = nn.Parameter(torch.empty(heads * self.hx * self.hy, 1))
        nn.init.xavier_normal_(self.w_xy)

    def forward(self, x, y):
        out = self.w_x(x) + self.w_y(y)
        hx = x.view(-1, self.heads, self.hx)
        hy = y.view(-1, self.heads, self.hy)
        if self.einsum:
            w = self.w_xy.view(self.heads, self.hx, self.hy)
            xy = torch.einsum("bhi,hij,bhj->bh", hx, w, hy)
        else:  # as model_zoo/FinalMLP: matmul on broadcast views
            xy = torch.matmul(
                torch.matmul(hx.unsqueeze(2),
                             self.w_xy.view(self.heads, self.hx, -1))
                .view(-1, self.heads, 1, self.hy),
                hy.unsqueeze(-1)).squeeze(-1)
        return out + xy.sum(dim=1).view(-1, 1)


class PeerModel(BaseModel):
    """One CTR model on FuxiCTR's BaseModel (its train_step, its L2)."""

    def __init__(self, name: str, fmap: FeatureMap, p: dict) -> None:
        super().__init__(fmap, model_id=name, gpu=-1, verbose=0,
                         model_root="/tmp/fuxictr-peer", metrics=["AUC"],
                         embedding_regularizer=p.get("embedding_l2") or None)
        self.kind = name
        dim = p["embedding_dim"]
        flat = fmap.num_fields * dim
        self.embedding_layer = FeatureEmbedding(fmap, dim)
        if name in ("dnn", "deepfm", "xdeepfm"):
            self.dnn = mlp(flat, p, output_dim=1)
            if name == "deepfm":
                self.fm = FactorizationMachine(fmap)
            if name == "xdeepfm":
                self.lr = LogisticRegression(fmap)
                self.cin = CompressedInteractionNet(
                    fmap.num_fields, p["cin_layer_sizes"], output_dim=1)
        elif name in ("dcnv2", "gdcn"):
            layers = p["num_cross_layers"]
            self.cross = (CrossNetV2(flat, layers) if name == "dcnv2"
                          else GatedCross(flat, layers))
            self.dnn = mlp(flat, p)
            self.head = nn.Linear(flat + p["hidden_units"][-1], 1)
        elif name.startswith("finalmlp"):
            self.fs1 = FeatureSelection(fmap, flat, p["fs1_context"], dim,
                                        p["fs_hidden_units"])
            self.fs2 = FeatureSelection(fmap, flat, p["fs2_context"], dim,
                                        p["fs_hidden_units"])
            self.mlp1 = mlp(flat, p, "mlp1_")
            self.mlp2 = mlp(flat, p, "mlp2_")
            self.fusion = Fusion(p["mlp1_hidden_units"][-1],
                                 p["mlp2_hidden_units"][-1], p["num_heads"],
                                 einsum=name == "finalmlp_einsum")
        elif name == "dsmlp":
            self.parallel_embedding = FeatureEmbedding(fmap, dim)
            self.main = mlp(flat, p, "main_", output_dim=1)
            self.parallel = mlp(flat, p, "parallel_", output_dim=1)
        else:
            raise SystemExit(f"fuxictr peer: no model {name!r}")
        self.compile("adam", "binary_crossentropy", p["learning_rate"])
        self.reset_parameters()
        self.model_to_device()
        self._max_gradient_norm = 10.0

    def logit(self, inputs):
        x = self.get_inputs(inputs)
        emb = self.embedding_layer(x)
        flat = emb.flatten(start_dim=1)
        k = self.kind
        if k == "dnn":
            return self.dnn(flat)
        if k == "deepfm":
            return self.dnn(flat) + self.fm(x, emb)
        if k == "xdeepfm":
            return self.dnn(flat) + self.lr(x) + self.cin(emb)
        if k in ("dcnv2", "gdcn"):
            return self.head(torch.cat([self.cross(flat), self.dnn(flat)],
                                       dim=-1))
        if k.startswith("finalmlp"):
            return self.fusion(self.mlp1(self.fs1(x, flat)),
                               self.mlp2(self.fs2(x, flat)))
        par = self.parallel_embedding(x).flatten(start_dim=1)
        return 0.5 * (self.main(flat) + self.parallel(par))

    def forward(self, inputs):
        return {"y_pred": self.output_activation(self.logit(inputs))}


# Module parameter lists of the layers above must match the TF side's
# settings keys; `params` is the tfdsmlp preset entry plus learning_rate.


def load_batches(path: str, num_fields: int) -> list[dict]:
    data = np.load(path)
    ids, dense, labels = data["ids"], data["dense"], data["labels"]
    batch = int(data["batch_size"])
    out = []
    for start in range(0, len(labels), batch):
        sl = slice(start, start + batch)
        b = {f"c{i}": torch.from_numpy(ids[sl, i].copy())
             for i in range(ids.shape[1])}
        for j in range(dense.shape[1]):
            b[f"n{j}"] = torch.from_numpy(dense[sl, j].copy())
        b["label"] = torch.from_numpy(labels[sl].reshape(-1, 1).copy())
        out.append(b)
    return out


def time_train(model, batches, steps: int, passes: int) -> float:
    model.train()
    for i in range(max(2, len(batches))):
        model.train_step(batches[i % len(batches)])
    size = batches[0]["label"].shape[0]
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for i in range(steps):
            model.train_step(batches[i % len(batches)])
        best = min(best, time.perf_counter() - start)
    return steps * size / best


def time_infer(model, batch, repeats: int) -> list[float]:
    model.eval()
    times = []
    with torch.inference_mode():
        model.logit(batch)
        for _ in range(repeats):
            start = time.perf_counter()
            model.logit(batch)
            times.append((time.perf_counter() - start) * 1000.0)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spec", required=True, help="spec.json of the TF side")
    p.add_argument("--model", required=True, help="model name in the spec")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    torch.manual_seed(0)
    fmap = feature_map(spec["vocab_sizes"], spec["num_numeric"])
    params = dict(spec["models"][args.model.removesuffix("_einsum")],
                  learning_rate=spec["lr"])
    model = PeerModel(args.model, fmap, params)
    batches = load_batches(spec["batches"], fmap.num_fields)
    model.train_step(batches[0])
    first_step = time.perf_counter() - t0
    train = time_train(model, batches, args.steps, args.passes)
    big = time_infer(model, batches[0], max(5, args.repeats // 20))
    one = {k: v[:1] for k, v in batches[0].items()}
    small = time_infer(model, one, args.repeats)
    size = batches[0]["label"].shape[0]
    json.dump({"library": f"fuxictr {_version()}, torch {torch.__version__}",
               "threads": torch.get_num_threads(),
               "trainable_params": sum(p.numel() for p in model.parameters()
                                       if p.requires_grad),
               "first_step_s": first_step,
               "train_examples_per_s": train,
               "infer_examples_per_s": size * 1000.0 / np.median(big),
               "batch1_p50_ms": float(np.percentile(small, 50)),
               "batch1_p99_ms": float(np.percentile(small, 99))},
              sys.stdout)
    return 0


def _version() -> str:
    from fuxictr import __version__
    return __version__


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
