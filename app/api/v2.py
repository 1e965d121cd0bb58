"""Open Inference Protocol v2 (KServe / Triton / MLServer clients): model `commitrisk`, FP32 [N, 15] in.

Supports JSON tensors and Triton's binary tensor extension (`Inference-Header-Content-Length`).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.answer import JSONAnswer
from app.api.body import is_json, media_type, parse_json, quick_json, receive_body, validate
from app.api.deps import DirectRoute, RegistryDep, services_of
from app.api.tokens import require_client
from app.contract import FEATURES, INPUT_NAME, LABEL_OUTPUT, PROBABILITY_OUTPUT
from app.errors import BatchTooLarge, InvalidInput, MalformedBody, ModelNotFound, ModelNotReady, UnsupportedMediaType
from app.plain import plain_infer
from app.predictor import Predictor
from app.registry import ModelRegistry
from app.repository import parse_version
from app.schemas import ErrorOut, InferOutputIn, InferRequestIn, request_body
from app.scoring import score
from app.services import Services

MODEL_NAME = "commitrisk"
HEADER_LENGTH = "inference-header-content-length"
HEADER_LENGTH_KEY = HEADER_LENGTH.encode()
# ASCII digits only (str.isdigit() accepts "²", which int() refuses) and few enough for int() (5,000 are refused).
_HEADER_DIGITS = re.compile(r"[0-9]{1,12}")
_DTYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_OUTPUT_TYPES = {PROBABILITY_OUTPUT: "FP32", LABEL_OUTPUT: "INT64"}
# Above this many rows the scoring leaves the event loop so small requests keep flowing.
THREADPOOL_ROWS = 64

router = APIRouter(prefix="/v2", tags=["v2"])
_ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": ErrorOut} for c in (400, 404, 413, 422, 503)}
# Infer: 401/403 only with COMMITRISK_CLIENT_TOKENS set; 415 for a body that is neither JSON nor the binary framing.
_INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorOut} for c in (400, 401, 403, 404, 413, 415, 422, 503)
}


def _predictor(registry: ModelRegistry, name: str, version: str | None) -> Predictor:
    """The served predictor if it is the model (and version) asked for."""
    if name != MODEL_NAME:
        raise ModelNotFound(f"unknown model {name[:60]!r}; this server serves {MODEL_NAME!r}")
    predictor = registry.require().champion
    if version is not None:
        number = parse_version(version)
        if number != predictor.version:
            registry.repository.version_dir(number)  # 404 when it does not exist at all
            raise ModelNotReady(f"version {number} is not loaded; this process serves {predictor.version}")
    return predictor


def _metadata(predictor: Predictor) -> dict[str, Any]:
    return {
        "name": MODEL_NAME,
        "versions": [str(predictor.version)],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, len(FEATURES)]}],
        "outputs": [{"name": n, "datatype": t, "shape": [-1]} for n, t in _OUTPUT_TYPES.items()],
    }


def _matrix(request: InferRequestIn, binary: bytes, max_rows: int) -> np.ndarray:
    """The one input tensor as float32 [N, 15]; InvalidInput/BatchTooLarge otherwise."""
    if len(request.inputs) != 1 or request.inputs[0].name != INPUT_NAME:
        raise InvalidInput(f"expected exactly one input named {INPUT_NAME!r}", [{"field": "inputs"}])
    tensor = request.inputs[0]
    width = len(FEATURES)
    dtype = _DTYPES.get(tensor.datatype)
    if dtype is None:
        raise InvalidInput(f"datatype {tensor.datatype[:20]!r} not supported; send FP32", [{"field": "datatype"}])
    if len(tensor.shape) != 2 or tensor.shape[1] != width or tensor.shape[0] < 1:
        raise InvalidInput(f"shape must be [N, {width}] with N >= 1", [{"field": "inputs.0.shape"}])
    rows = tensor.shape[0]
    if rows > max_rows:
        raise BatchTooLarge(f"{rows} rows in one request; the limit is {max_rows}")
    size = (tensor.parameters or {}).get("binary_data_size")
    try:
        if size is not None:
            if not isinstance(size, int) or size != rows * width * dtype.itemsize or size > len(binary):
                raise ValueError(f"binary_data_size {size!r} does not match shape and datatype")
            flat = np.frombuffer(binary, dtype=dtype, count=rows * width)
        else:
            flat = np.asarray(tensor.data if tensor.data is not None else [])
            if flat.dtype.kind not in "iuf":
                raise ValueError("data must hold numbers only")
            flat = flat.reshape(-1)
        with np.errstate(over="ignore"):  # too large for float32 → inf → rejected just below
            matrix = flat.astype(np.float32).reshape(rows, width)
    except ValueError as exc:
        raise InvalidInput(f"input {INPUT_NAME!r}: {exc}", [{"field": "inputs.0.data", "message": str(exc)}]) from None
    bad = ~np.isfinite(matrix) | (matrix < 0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        message = f"row {r}, {FEATURES[c]}: values must be finite and >= 0 (got {matrix[r, c]})"
        raise InvalidInput(message, [{"field": f"inputs.0.data.{r}.{FEATURES[c]}", "message": message}])
    return matrix


def _infer(services: Services, predictor: Predictor, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (FP32) and labels (INT64) through the one scoring path (metrics, shadow, log)."""
    _, batch = score(services, predictor, matrix.astype(np.float64), matrix, explain=False)
    return batch.probabilities.astype(np.float32), batch.labels.astype(np.int64)


@router.get("", summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return {"name": MODEL_NAME, "version": "1", "extensions": ["binary_tensor_data"]}


@router.get("/health/live", summary="Server liveness")
async def server_live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Server readiness", responses=_ERRORS)
async def server_ready(registry: RegistryDep) -> dict[str, bool]:
    registry.require()
    return {"ready": True}


@router.get("/models/{name}", summary="Model metadata", responses=_ERRORS)
async def model_metadata(registry: RegistryDep, name: str) -> dict[str, Any]:
    return _metadata(_predictor(registry, name, None))


@router.get("/models/{name}/versions/{version}", summary="Model version metadata", responses=_ERRORS)
async def version_metadata(registry: RegistryDep, name: str, version: str) -> dict[str, Any]:
    return _metadata(_predictor(registry, name, version))


@router.get("/models/{name}/ready", summary="Model readiness", responses=_ERRORS)
async def model_ready(registry: RegistryDep, name: str) -> dict[str, Any]:
    _predictor(registry, name, None)
    return {"name": MODEL_NAME, "ready": True}


@router.get("/models/{name}/versions/{version}/ready", summary="Model version readiness", responses=_ERRORS)
async def version_ready(registry: RegistryDep, name: str, version: str) -> dict[str, Any]:
    _predictor(registry, name, version)
    return {"name": MODEL_NAME, "ready": True}


def _require_media(request: Request, binary: bool) -> None:
    """JSON, or no Content-Type at all (the official tritonclient sends none); octet-stream with the binary framing."""
    kind = media_type(request)
    if kind is None or is_json(kind) or (binary and kind == b"application/octet-stream"):
        return
    raise UnsupportedMediaType(
        f"infer reads JSON (or Triton's binary framing with {HEADER_LENGTH}); got {kind.decode('latin-1')[:60]!r}",
        [{"field": "content-type", "message": "expected application/json"}],
    )


def _header_length(value: str, size: int) -> int:
    """The JSON header's length from the binary extension's header; MalformedBody unless it is a length in the body."""
    if _HEADER_DIGITS.fullmatch(value) is None or int(value) > size:
        message = f"{HEADER_LENGTH} {value[:20]!r} is not a length within the {size}-byte body"
        raise MalformedBody(message, [{"field": HEADER_LENGTH, "message": "expected ASCII digits, at most the body"}])
    return int(value)


async def infer(request: Request) -> Response:
    """Probabilities of the positive class (FP32 [N]) and labels at the model's threshold (INT64 [N])."""
    services = services_of(request)
    require_client(request, services.settings)
    header_length = _header(request, HEADER_LENGTH_KEY)
    _require_media(request, binary=header_length is not None)
    body = await receive_body(request)
    params = request.path_params
    max_rows = services.settings.max_batch
    plain = None if header_length is not None else plain_infer(quick_json(body), INPUT_NAME, max_rows)
    if plain is not None:  # the common JSON body: checked without a model object (see `plain_infer`)
        request_id, rows, values = plain
        predictor = _predictor(services.registry, params["name"], params.get("version"))
        matrix = np.array(values, dtype=np.float32).reshape(rows, len(FEATURES))
        output_parameters: dict[str, Any] | None = None
        requested: list[InferOutputIn] = []
    else:
        split = len(body) if header_length is None else _header_length(header_length, len(body))
        payload = validate(InferRequestIn, parse_json(body[:split]))
        predictor = _predictor(services.registry, params["name"], params.get("version"))
        matrix = _matrix(payload, body[split:], max_rows)
        request_id, output_parameters, requested = payload.id, payload.parameters, payload.outputs or []
    if matrix.shape[0] > THREADPOOL_ROWS:
        probs, labels = await run_in_threadpool(_infer, services, predictor, matrix)
    else:
        probs, labels = _infer(services, predictor, matrix)
    tensors = {PROBABILITY_OUTPUT: probs, LABEL_OUTPUT: labels}
    return _respond(request_id, output_parameters, requested, predictor, tensors)


def _header(request: Request, name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes), as `request.headers.get` finds it without building them."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]


for _path_template, _names in (
    ("/models/{name}/infer", ("name",)),
    ("/models/{name}/versions/{version}/infer", ("name", "version")),
):
    router.add_api_route(
        _path_template,
        infer,
        methods=["POST"],
        summary="Inference" + (" on a version" if "version" in _names else ""),
        responses=_INFER_ERRORS,
        response_model=None,
        openapi_extra={**request_body(InferRequestIn), "parameters": _path(*_names)},
        route_class_override=DirectRoute,
    )


def _respond(
    request_id: str | None,
    parameters: dict[str, Any] | None,
    requested: list[InferOutputIn],
    predictor: Predictor,
    tensors: dict[str, np.ndarray],
) -> Response:
    names = [o.name for o in requested] or list(tensors)
    unknown = [n for n in names if n not in tensors]
    if unknown:
        raise InvalidInput(f"unknown output(s) {unknown}; available: {list(tensors)}", [{"field": "outputs"}])
    binary_all = bool((parameters or {}).get("binary_data_output"))
    flags = {o.name: bool((o.parameters or {}).get("binary_data", binary_all)) for o in requested}
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for n in names:
        array = tensors[n]
        entry: dict[str, Any] = {"name": n, "datatype": _OUTPUT_TYPES[n], "shape": list(array.shape)}
        if flags.get(n, binary_all):
            blob = array.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.tolist()
        outputs.append(entry)
    head: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "model_version": str(predictor.version),
        "outputs": outputs,
    }
    if request_id is not None:
        head["id"] = request_id
    header = orjson.dumps(head)
    if not blobs:
        return JSONAnswer(header)
    return Response(
        header + b"".join(blobs),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
