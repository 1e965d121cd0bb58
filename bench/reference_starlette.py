"""The hand-written reference of bench/serve.py: Starlette + orjson + onnxruntime, minimal checks (issue 18).

What a person would write in twenty lines to serve the same champion: no validation beyond "15 numbers", no
metrics, no log, no explanation. `bench/serve.py` runs it beside commitrisk so the ratio is measured in one run.

    .venv/bin/python -m bench.reference_starlette --models models --port 8001 [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.contract import FEATURES


def session(path: Path) -> ort.InferenceSession:
    """The model on one thread, as commitrisk runs it (a fair comparison on a shared 2-core machine)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def build(models: Path) -> Starlette:
    """The app serving the champion of `models`."""
    version = (models / "champion").read_text().strip()
    manifest = json.loads((models / version / "manifest.json").read_text())
    model = session(models / version / "model.onnx")
    inputs, outputs, threshold = manifest["input_name"], [manifest["probability_output"]], manifest["threshold"]

    async def predict(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            row = [[float(body[name]) for name in FEATURES]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return Response(b'{"error":"expected the 15 metrics"}', 422, media_type="application/json")
        p = float(model.run(outputs, {inputs: np.array(row, dtype=np.float32)})[0][0, -1])
        answer = {"probability": p, "buggy": p >= threshold, "model_version": int(version)}
        return Response(orjson.dumps(answer), media_type="application/json")

    async def live(request: Request) -> Response:
        return Response(b'{"live":true}', media_type="application/json")

    async def pid(request: Request) -> Response:  # which worker answered: bench/serve.py waits for all of them
        return Response(str(os.getpid()).encode(), media_type="text/plain")

    routes = [Route("/predict", predict, methods=["POST"]), Route("/health/live", live), Route("/health/ready", live)]
    return Starlette(routes=[*routes, Route("/pid", pid)])


def from_env() -> Starlette:
    """The app of each spawned worker (`--workers N`): the models directory comes through the environment."""
    return build(Path(os.environ["BENCH_REFERENCE_MODELS"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    options = {"host": "127.0.0.1", "port": args.port, "access_log": False, "log_level": "warning"}
    if args.workers > 1:  # uvicorn spawns workers from an import string, as commitrisk's own `--workers`
        os.environ["BENCH_REFERENCE_MODELS"] = str(args.models.resolve())
        uvicorn.run("bench.reference_starlette:from_env", factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(build(args.models), **options)


if __name__ == "__main__":
    main()
