from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.api.v2 import _matrix
from app.contract import FEATURES, INPUT_NAME
from app.errors import BatchTooLarge, InvalidInput
from app.plain import plain_infer
from app.schemas import FLOAT32_MAX, InferRequestIn


def rows(commit: dict[str, Any], n: int) -> list[list[float]]:
    return [[float(commit[f]) for f in FEATURES]] * n


def test_metadata_and_health(client: Any) -> None:
    assert client.get("/v2").json()["name"] == "commitrisk"
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2/models/commitrisk").json()
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 15]}]
    assert {o["name"] for o in meta["outputs"]} == {"probabilities", "label"}
    assert client.get("/v2/models/commitrisk/versions/1").status_code == 200
    assert client.get("/v2/models/commitrisk/ready").json()["ready"] is True
    assert client.get("/v2/models/commitrisk/versions/2/ready").status_code == 503  # on disk, not served
    assert client.get("/v2/models/commitrisk/versions/9").status_code == 404
    assert client.get("/v2/models/commitrisk/versions/..x").status_code == 400
    assert client.get("/v2/models/other").status_code == 404


def test_json_infer_matches_predict(client: Any, commit: dict[str, Any]) -> None:
    body = {
        "id": "r1",
        "inputs": [{"name": "features", "shape": [2, 15], "datatype": "FP32", "data": rows(commit, 2)}],
    }
    r = client.post("/v2/models/commitrisk/infer", json=body)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert r.json()["id"] == "r1" and r.json()["model_version"] == "1"
    expected = client.post("/predict?explain=false", json=commit).json()
    assert out["probabilities"]["shape"] == [2]
    assert out["probabilities"]["data"][0] == pytest.approx(expected["probability"], abs=1e-6)
    assert out["label"]["data"] == [int(expected["buggy"])] * 2


@pytest.mark.parametrize(
    "tensor",
    [
        {"name": "x", "shape": [1, 15], "datatype": "FP32", "data": [0] * 15},
        {"name": "features", "shape": [1, 14], "datatype": "FP32", "data": [0] * 14},
        {"name": "features", "shape": [1, 15], "datatype": "BYTES", "data": [0] * 15},
        {"name": "features", "shape": [2, 15], "datatype": "FP32", "data": [0] * 15},
        {"name": "features", "shape": [1, 15], "datatype": "FP32", "data": ["a"] * 15},
        {"name": "features", "shape": [1, 15], "datatype": "FP32", "data": [-1] + [0] * 14},
        {"name": "features", "shape": [1, 15], "datatype": "FP32", "data": [[0, 1], [2]]},
    ],
)
def test_bad_tensors_are_422(client: Any, tensor: dict[str, Any]) -> None:
    r = client.post("/v2/models/commitrisk/infer", json={"inputs": [tensor]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "InvalidInput"


def test_nan_in_tensor_is_422_and_too_many_rows_413(client: Any) -> None:
    data = ",".join(["NaN"] + ["0"] * 14)
    body = ('{"inputs":[{"name":"features","shape":[1,15],"datatype":"FP32","data":[' + data + "]}]}").encode()
    assert client.post("/v2/models/commitrisk/infer", content=body).status_code == 422
    big = {"inputs": [{"name": "features", "shape": [1001, 15], "datatype": "FP32", "data": [0] * 15015}]}
    assert client.post("/v2/models/commitrisk/infer", json=big).status_code == 413


def test_tritonclient_round_trip(serve: Callable[..., str], models_dir: Path, commit: dict[str, Any]) -> None:
    import tritonclient.http as httpclient

    url = serve(models_dir)
    triton = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert triton.is_server_live() and triton.is_server_ready()
        assert triton.is_model_ready("commitrisk")
        assert triton.get_model_metadata("commitrisk")["inputs"][0]["name"] == "features"
        batch = np.asarray(rows(commit, 3), dtype=np.float32)
        batch[1, FEATURES.index("la")] = 1  # a different commit in the middle
        for binary in (True, False):
            tensor = httpclient.InferInput("features", list(batch.shape), "FP32")
            tensor.set_data_from_numpy(batch, binary_data=binary)
            outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("probabilities", "label")]
            result = triton.infer("commitrisk", inputs=[tensor], outputs=outputs)
            probabilities = result.as_numpy("probabilities")
            assert probabilities.dtype == np.float32 and probabilities.shape == (3,)
            assert probabilities[0] == pytest.approx(probabilities[2]) and probabilities[0] != probabilities[1]
            assert result.as_numpy("label").dtype == np.int64
        default = triton.infer("commitrisk", inputs=[tensor])  # no outputs named: all of them
        assert default.as_numpy("probabilities") is not None
    finally:
        triton.close()


@pytest.mark.parametrize("value", ["²".encode("latin-1"), b"9" * 5000, b"-1", b"0x10", b"99"])
def test_a_bad_binary_header_length_is_400(client: Any, value: bytes) -> None:
    body = b'{"inputs":[]}'
    r = client.post("/v2/models/commitrisk/infer", content=body, headers={"Inference-Header-Content-Length": value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "MalformedBody"


def test_infer_reads_json_or_the_binary_framing_only(client: Any, commit: dict[str, Any]) -> None:
    body = json.dumps({"inputs": [{"name": "features", "shape": [1, 15], "datatype": "FP32", "data": rows(commit, 1)}]})
    url = "/v2/models/commitrisk/infer"
    for kind in ("text/plain", "application/x-www-form-urlencoded", "application/octet-stream"):
        r = client.post(url, content=body, headers={"content-type": kind})
        assert r.status_code == 415 and r.json()["error"]["type"] == "UnsupportedMediaType", kind
    assert client.post(url, content=body).status_code == 200  # no Content-Type: what tritonclient sends
    binary = json.dumps({"inputs": [{"name": "features", "shape": [1, 15], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 60}}]}).encode()  # fmt: skip
    framed = binary + np.asarray(rows(commit, 1), dtype="<f4").tobytes()
    headers = {"content-type": "application/octet-stream", "Inference-Header-Content-Length": str(len(binary))}
    assert client.post(url, content=framed, headers=headers).status_code == 200


def test_huge_tensor_lists_give_one_error(client: Any) -> None:
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": ["x"] * 200_000}]}
    r = client.post("/v2/models/commitrisk/infer", json=body)
    assert r.status_code == 422 and len(r.json()["error"]["details"]) == 1 and len(r.content) < 2_000


_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, FLOAT32_MAX, 2**53, 2**53 + 1, 2**64, 1e39, True]),
)


@st.composite
def _infer_bodies(draw: st.DrawFn) -> Any:
    """Mostly the common JSON body, with one part changed now and then."""
    rows = draw(st.integers(1, 3))
    data = draw(st.lists(st.floats(0, 1e6) | st.integers(0, 10**6), min_size=rows * 15, max_size=rows * 15))
    datatype = draw(st.sampled_from(["FP32", "FP64"]))
    tensor: dict[str, Any] = {"name": "features", "shape": [rows, 15], "datatype": datatype, "data": data}
    body: dict[str, Any] = {"inputs": [tensor]}
    if draw(st.booleans()):  # one list per row, the nested form many clients send
        tensor["data"] = [data[r * 15 : (r + 1) * 15] for r in range(rows)]
    if draw(st.booleans()):
        body["id"] = draw(st.none() | st.text(max_size=3) | st.integers())
    change = draw(
        st.sampled_from(["none", "value", "row", "name", "datatype", "shape", "data", "extra", "tensor", "outputs"])
    )
    if change == "value":
        index = draw(st.integers(0, rows * 15 - 1))
        if type(tensor["data"][0]) is list:
            tensor["data"][index // 15][index % 15] = draw(_NUMBERS)
        else:
            tensor["data"][index] = draw(_NUMBERS)
    elif change == "row":  # a nested body whose rows are not all rows of 15 numbers
        tensor["data"] = draw(st.sampled_from([[data[:15], data[:14]], [data[:15], 1.0], [data[:30]], [[data[:15]]]]))
    elif change == "name":
        tensor["name"] = draw(st.sampled_from(["x", 1, None, ["features"]]))
    elif change == "datatype":
        tensor["datatype"] = draw(st.sampled_from(["BYTES", "INT64", 32, ["FP32"], None]))
    elif change == "shape":
        tensor["shape"] = draw(st.lists(st.integers(-1, 20) | st.sampled_from([True, 1.0, "15"]), max_size=3))
    elif change == "data":
        tensor["data"] = draw(st.sampled_from([None, [], [[0] * 15], "0"]))
    elif change == "extra":
        tensor["parameters"] = {"binary_data_size": 60}
    elif change == "tensor":
        body["inputs"] = draw(st.sampled_from([[], [tensor, tensor], [1], None]))
    elif change == "outputs":
        body["outputs"] = [{"name": "label"}]
    return body


@hypothesis_settings(max_examples=400, deadline=None, database=None)
@given(_infer_bodies())
def test_plain_infer_accepts_only_what_the_model_and_tensor_checks_accept_with_the_same_matrix(body: Any) -> None:
    plain = plain_infer(body, INPUT_NAME, max_rows=2)
    try:
        matrix = _matrix(InferRequestIn.model_validate(body), b"", max_rows=2)
    except (ValidationError, InvalidInput, BatchTooLarge):
        assert plain is None
        return
    if plain is not None:  # None is always allowed: the model and the tensor checks then decide
        request_id, rows, values = plain
        assert request_id == body.get("id") and not body.keys() - {"id", "inputs"}
        fast = np.array(values, dtype=np.float32).reshape(rows, len(FEATURES))  # what the route scores
        assert fast.tobytes() == matrix.tobytes() and fast.shape == matrix.shape


def test_the_common_body_skips_the_model_and_answers_alike(client: Any, commit: dict[str, Any]) -> None:
    tensor = {"name": "features", "shape": [1, 15], "datatype": "FP32", "data": rows(commit, 1)[0]}
    assert plain_infer({"id": "r", "inputs": [tensor]}, INPUT_NAME, 1000) is not None
    common = client.post("/v2/models/commitrisk/infer", json={"id": "r", "inputs": [tensor]}).json()
    # Naming both outputs takes the general path; the answer is the same.
    outputs = [{"name": "probabilities"}, {"name": "label"}]
    general = client.post("/v2/models/commitrisk/infer", json={"id": "r", "inputs": [tensor], "outputs": outputs})
    assert common == general.json()
    nested = {**tensor, "data": [tensor["data"]]}  # one list per row: checked without the model too, same answer
    assert plain_infer({"id": "r", "inputs": [nested]}, INPUT_NAME, 1000) is not None
    assert client.post("/v2/models/commitrisk/infer", json={"id": "r", "inputs": [nested]}).json() == common
