"""Where one request's time goes: py-spy samples of a loaded server, grouped by stage (used by bench/serve.py).

py-spy (`pip install py-spy`) samples the server's Python stacks from outside, at 1 kHz, without slowing it down
the way a tracing profiler would. Each sample is put in the stage of its innermost recognised frame; samples on
other threads (the prediction log writer) are counted apart, since they are off the request path but share the
GIL and the cores. Divided by the requests answered meanwhile, a stage's samples are its wall time per request.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (stage, substrings of a frame), tried on each frame from the innermost outwards; the first match wins.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("onnxruntime run", ("Predictor.probabilities",)),
    ("explanation", ("_linear_predictions", "LinearExplainer", "_term_factor", "Predictor._factors", "format_number")),
    ("metrics", ("observe_request", "observe_predictions", "prometheus_client", "out_of_range")),
    ("log hand-off + shadow sink", ("ShadowSink", "PredictionLog.submit", "PredictionBatch", "RequestIds")),
    ("validation", ("validate (app/api/body", "model_validate", "CommitIn", "_matrix (app/api/v2")),
    ("body read + JSON parse", ("Request.body", "read_json", "parse_json", "require_json", "Request.stream")),
    ("answer + JSON encoding", ("answer (app/api", "_json (app/api", "_respond (app/api", "Response.__init__")),
    ("socket write", ("RequestResponseCycle.send",)),
    ("scoring glue", ("answers (app/api/predict", "score (app/scoring", "_infer (app/api/v2")),
    ("route handler", ("predict (app/api/predict", "query_flag", "explain_of", "services_of", "infer (app/api/v2")),
    ("middleware + routing", ("ServiceMiddleware", "call_direct", "starlette", "fastapi", "run_asgi", "ProxyHeaders")),
    ("HTTP parsing (httptools protocol)", ("data_received", "HttpToolsProtocol", "on_url")),
    ("event loop (uvloop: epoll, socket reads)", ("Runner.run",)),
]
WRITER = "log writer thread (off the request path)"


def available() -> bool:
    """True when py-spy is on PATH."""
    return executable() is not None


def executable() -> str | None:
    """py-spy on PATH, or beside this Python (a virtualenv not activated)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def record(pid: int, seconds: int, out: Path) -> Path:
    """Sample `pid` for `seconds` at 1 kHz into a collapsed-stack file."""
    cmd = [executable() or "py-spy", "record", "-p", str(pid), "-d", str(seconds), "-r", "1000", "-f", "raw"]
    subprocess.run([*cmd, "-o", str(out), "--nonblocking"], check=True, capture_output=True)
    return out


def stages(collapsed: Path) -> Counter[str]:
    """Samples per stage of a collapsed-stack file (`frame;frame;… count` lines)."""
    found: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "Thread._bootstrap" in stack:
            found[WRITER if "PredictionLog._run" in stack else "other threads"] += int(count)
            continue
        found[stage_of(stack.split(";"))] += int(count)
    return found


def stage_of(frames: list[str]) -> str:
    """The stage of one sampled stack (outermost frame first)."""
    for frame in reversed(frames):
        for stage, keys in STAGES:
            if any(key in frame for key in keys):
                return stage
    return "other"


def table(found: Counter[str], requests: int) -> str:
    """A Markdown table: stage, share of samples, µs of wall time per request."""
    total = sum(found.values()) or 1
    lines = ["| stage | share | µs per request |", "|---|---|---|"]
    for stage, n in found.most_common():
        lines.append(f"| {stage} | {100 * n / total:.1f} % | {1000 * n / max(requests, 1):.1f} |")
    return "\n".join(lines)
