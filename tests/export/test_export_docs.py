"""The request examples in docs/SERVING.md and README.md match the
signatures exactly: every curl body is answered by an export with the Frappe
columns, and the models.config examples parse as TF Serving configs."""

from __future__ import annotations

import json
import re

import pytest
from tiny_data import REPO_ROOT

DOCS = [REPO_ROOT / "docs" / "SERVING.md", REPO_ROOT / "README.md"]
FRAPPE = ["user", "item", "daytime", "weekday", "isweekend", "homework",
          "cost", "weather", "country", "city"]
CURL = re.compile(r"curl [^\n]*?/v1/models/([\w-]+)(?:/versions/\d+)?:"
                  r"(predict|classify|regress) -d '(.*?)'", re.DOTALL)


def _curl_bodies():
    out = []
    for doc in DOCS:
        for m in CURL.finditer(doc.read_text(encoding="utf-8")):
            out.append((doc.name, m.group(1), m.group(2), m.group(3)))
    return out


@pytest.fixture(scope="module")
def frappe_like(tmp_path_factory):
    """A dataset with Frappe's CSV columns (3000 distinct values per column,
    so the documented ids are in range) and an (untrained) DS-MLP export."""
    from tfdsmlp.dataset_dir import DatasetDir
    from tfdsmlp.export import export_saved_model
    from tfdsmlp.models import build_model
    from tfdsmlp.servecheck.emulator import Servable

    from data_tools.convert import convert

    tmp = tmp_path_factory.mktemp("frappe_like")
    csv = tmp / "train.csv"
    lines = ["label," + ",".join(FRAPPE)]
    lines += [f"{r % 2}," + ",".join(str(5000 + r) for _ in FRAPPE)
              for r in range(3000)]
    csv.write_text("\n".join(lines) + "\n")
    data = str(tmp / "data")
    convert("csv", str(csv), data, label="label", quiet=True, workers=1)
    spec = DatasetDir.open(data).spec
    model = build_model("dsmlp", {"main_hidden_units": [4],
                                  "parallel_hidden_units": [4],
                                  "embedding_dim": 2}, spec)
    model(model.dummy_inputs())
    path = export_saved_model(model, spec, str(tmp / "sm"), "dsmlp",
                              data_dir=data, warmup=False)
    return Servable(path)


def test_docs_have_request_examples():
    bodies = _curl_bodies()
    verbs = {(doc, verb) for doc, _, verb, _ in bodies}
    assert {("SERVING.md", "predict"), ("SERVING.md", "classify"),
            ("SERVING.md", "regress"), ("README.md", "predict")} <= verbs
    sigs = {json.loads(b).get("signature_name", "serving_default")
            for _, _, _, b in bodies}
    assert {"serving_default", "predict_indexed", "predict_examples",
            "classify", "regress"} <= sigs


@pytest.mark.parametrize("doc,model,verb,body", _curl_bodies())
def test_documented_request_is_answered(frappe_like, doc, model, verb, body):
    assert model in ("dsmlp", "dsmlp_teacher")
    body = json.loads(body)
    resp = frappe_like.rest(verb, body)
    key = {"predict": ("predictions" if "instances" in body else "outputs"),
           "classify": "results", "regress": "results"}[verb]
    assert set(resp) == {key}
    n = len(body.get("instances") or body.get("examples") or
            next(iter(body["inputs"].values())))
    if key == "outputs":
        assert all(len(v) == n for v in resp[key].values())
    else:
        assert len(resp[key]) == n


def test_models_config_examples_parse():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    found = 0
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```\n(model_config_list \{.*?)```", text,
                                re.DOTALL):
            cfg = text_format.Parse(block,
                                    model_server_config_pb2.ModelServerConfig())
            names = [c.name for c in cfg.model_config_list.config]
            assert names == ["dsmlp", "dsmlp_teacher"]
            for c in cfg.model_config_list.config:
                assert c.base_path == f"/models/{c.name}"
                assert c.model_platform == "tensorflow"
            found += 1
    assert found >= 1
