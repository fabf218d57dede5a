"""TF Serving PredictRequest / ClassificationRequest / RegressionRequest
protos and REST JSON bodies ("instances" and "inputs") built from the test
rows, answered by the loaded signatures (`Servable` follows TF Serving's
request rules)."""

from __future__ import annotations

import json

from tfdsmlp.export.serving_requests import (
    classification_request,
    columns,
    make_example,
    predict_request,
    regression_request,
    rest_examples,
    rest_inputs,
    rest_instances,
    serialized_examples,
)
from tfdsmlp.servecheck.emulator import ServingError

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    regression_pb2,
)

TOL = 1e-5
N = 16


@pytest.fixture(scope="module")
def rows(test_rows):
    return test_rows.rows(N)


@pytest.fixture(scope="module")
def ref(reference):
    return {k: v[:N] for k, v in reference["dsmlp"].items()}


def _wire(msg, cls):
    """Serialize and parse again, as a gRPC call does."""
    out = cls()
    out.ParseFromString(msg.SerializeToString())
    return out


def test_predict_request_raw_values(servable, test_rows, rows, ref):
    req = _wire(predict_request("dsmlp", "serving_default",
                                columns(rows, test_rows.inputs)),
                predict_pb2.PredictRequest)
    assert req.inputs["c0"].dtype == tf.string.as_datatype_enum
    assert req.inputs["x0"].dtype == tf.float32.as_datatype_enum
    resp = servable.predict(req)
    assert resp.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(
        tf.make_ndarray(resp.outputs["probability"]).reshape(-1),
        ref["probability"], atol=TOL)
    np.testing.assert_allclose(
        tf.make_ndarray(resp.outputs["logit"]).reshape(-1), ref["logit"],
        atol=TOL)


def test_predict_request_output_filter(servable, test_rows, rows):
    req = predict_request("dsmlp", "", columns(rows, test_rows.inputs))
    req.output_filter.append("probability")
    resp = servable.predict(req)
    assert list(resp.outputs) == ["probability"]
    assert resp.model_spec.signature_name == "serving_default"


def test_predict_request_indexed_and_examples(servable, test_rows, rows,
                                              ref):
    req = predict_request("dsmlp", "predict_indexed",
                          {"ids": test_rows.ids[:N],
                           "dense": test_rows.dense[:N]})
    out = servable.predict(_wire(req, predict_pb2.PredictRequest))
    np.testing.assert_allclose(
        tf.make_ndarray(out.outputs["probability"]).reshape(-1),
        ref["probability"], atol=TOL)
    req = predict_request("dsmlp", "predict_examples", {
        "examples": serialized_examples(rows, test_rows.inputs)})
    out = servable.predict(_wire(req, predict_pb2.PredictRequest))
    np.testing.assert_allclose(
        tf.make_ndarray(out.outputs["logit"]).reshape(-1), ref["logit"],
        atol=TOL)


def test_predict_request_with_wrong_dtype_names_the_feature(servable,
                                                            test_rows, rows):
    cols = columns(rows, test_rows.inputs)
    cols["c5"] = np.arange(N, dtype=np.int64)
    with pytest.raises(ServingError, match="feature `c5` expects DT_STRING"):
        servable.predict(predict_request("dsmlp", "serving_default", cols))


def test_predict_request_with_missing_feature(servable, test_rows, rows):
    cols = columns(rows, test_rows.inputs)
    del cols["x1"]
    with pytest.raises(ServingError, match=r"missing feature\(s\) \['x1'\]"):
        servable.predict(predict_request("dsmlp", "serving_default", cols))


def test_classification_request(servable, test_rows, rows, ref):
    req = classification_request(
        "dsmlp", [make_example(r, test_rows.inputs) for r in rows])
    resp = servable.classify(_wire(req,
                                   classification_pb2.ClassificationRequest))
    assert len(resp.result.classifications) == N
    for c, p in zip(resp.result.classifications, ref["probability"]):
        assert [x.label for x in c.classes] == ["0", "1"]
        assert c.classes[1].score == pytest.approx(p, abs=TOL)
        assert c.classes[0].score == pytest.approx(1 - p, abs=TOL)


def test_classification_request_with_context(servable, test_rows, rows, ref):
    """example_list_with_context: shared features go into the context."""
    shared = {k: v for k, v in rows[0].items() if k in ("x0", "x1")}
    ctx = make_example(shared, [i for i in test_rows.inputs
                                if i.name in shared])
    own = [i for i in test_rows.inputs if i.name not in shared]
    same = [{**r, **shared} for r in rows]
    req = classification_request("dsmlp", [make_example(r, own)
                                           for r in same], context=ctx)
    resp = servable.classify(req)
    direct = servable.call("classify", {"inputs": serialized_examples(
        same, test_rows.inputs)})
    got = [c.classes[1].score for c in resp.result.classifications]
    np.testing.assert_allclose(got, direct["scores"][:, 1], atol=TOL)


def test_regression_request(servable, test_rows, rows, ref):
    req = regression_request(
        "dsmlp", [make_example(r, test_rows.inputs) for r in rows])
    resp = servable.regress(_wire(req, regression_pb2.RegressionRequest))
    np.testing.assert_allclose([r.value for r in resp.result.regressions],
                               ref["probability"], atol=TOL)


def test_classify_api_needs_the_classify_method(servable, test_rows, rows):
    req = classification_request(
        "dsmlp", [make_example(r, test_rows.inputs) for r in rows],
        signature_name="predict_examples")
    with pytest.raises(ServingError, match="tensorflow/serving/classify"):
        servable.classify(req)


# --------------------------------------------------------------------- REST
def test_rest_instances_row_format(servable, rows, ref):
    body = json.dumps(rest_instances(rows))
    resp = servable.rest("predict", body)
    preds = resp["predictions"]
    assert len(preds) == N and set(preds[0]) == {"probability", "logit"}
    np.testing.assert_allclose([p["probability"][0] for p in preds],
                               ref["probability"], atol=TOL)


def test_rest_inputs_columnar_format(servable, test_rows, rows, ref):
    body = json.dumps(rest_inputs(columns(rows, test_rows.inputs)))
    out = servable.rest("predict", body)["outputs"]
    np.testing.assert_allclose(np.reshape(out["logit"], -1), ref["logit"],
                               atol=TOL)


def test_rest_indexed_and_b64_examples(servable, test_rows, rows, ref):
    body = rest_instances([{"ids": test_rows.ids[i].tolist(),
                            "dense": test_rows.dense[i].tolist()}
                           for i in range(N)], "predict_indexed")
    preds = servable.rest("predict", json.dumps(body))["predictions"]
    np.testing.assert_allclose([p["probability"][0] for p in preds],
                               ref["probability"], atol=TOL)
    ex = serialized_examples(rows, test_rows.inputs)
    body = {"signature_name": "predict_examples", "instances": [
        {"b64": __import__("base64").b64encode(e).decode()} for e in ex]}
    preds = servable.rest("predict", json.dumps(body))["predictions"]
    np.testing.assert_allclose([p["logit"][0] for p in preds], ref["logit"],
                               atol=TOL)


def test_rest_classify_and_regress(servable, rows, ref):
    out = servable.rest("classify", json.dumps(rest_examples(rows,
                                                             "classify")))
    assert [[c[0] for c in r] for r in out["results"]] == [["0", "1"]] * N
    np.testing.assert_allclose([r[1][1] for r in out["results"]],
                               ref["probability"], atol=TOL)
    out = servable.rest("regress", json.dumps(rest_examples(rows,
                                                            "regress")))
    np.testing.assert_allclose(out["results"], ref["probability"], atol=TOL)


def test_rest_number_for_a_string_feature_names_it(servable, rows):
    body = rest_instances(rows[:2])
    body["instances"][0]["c0"] = 17
    with pytest.raises(ServingError, match=r"feature `c0`: JSON value 17 is "
                                           r"not of expected type DT_STRING"):
        servable.rest("predict", body)


def test_rest_missing_feature_names_it(servable, rows):
    body = rest_instances(rows[:2])
    del body["instances"][1]["x0"]
    with pytest.raises(ServingError, match="instance 1 is missing feature "
                                           "`x0`"):
        servable.rest("predict", body)


def test_rest_empty_instances(servable):
    assert servable.rest("predict", {"instances": []}) == {"predictions": []}
