"""The minimal FastAPI reference of bench/serve.py: a pydantic model + onnxruntime, nothing else (issue 18).

.venv/bin/python -m bench.reference_fastapi --models models --port 8002
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from app.contract import FEATURES
from bench.reference_starlette import session


class Commit(BaseModel):
    ns: float
    nd: float
    nf: float
    entropy: float
    la: float
    ld: float
    ha: float
    hd: float
    lt: float
    ndev: float
    age: float
    nuc: float
    exp: float
    rexp: float
    sexp: float
    commit_id: str | None = None


def build(models: Path) -> FastAPI:
    """The app serving the champion of `models`."""
    version = (models / "champion").read_text().strip()
    manifest = json.loads((models / version / "manifest.json").read_text())
    model = session(models / version / "model.onnx")
    inputs, outputs, threshold = manifest["input_name"], [manifest["probability_output"]], manifest["threshold"]
    app = FastAPI()

    @app.post("/predict")
    async def predict(commit: Commit) -> dict[str, object]:
        row = [[getattr(commit, name) for name in FEATURES]]
        p = float(model.run(outputs, {inputs: np.array(row, dtype=np.float32)})[0][0, -1])
        return {"probability": p, "buggy": p >= threshold, "model_version": int(version)}

    @app.get("/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    app.add_api_route("/health/ready", live)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    uvicorn.run(build(args.models), host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
