"""Real git repositories for the mining tests, built with the git command line and fixed dates."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DAY = 86400
T0 = 1_600_000_000  # 2020-09-13T12:26:40Z: commit k of a script is authored at T0 + day * DAY


class GitScript:
    """Builds a history step by step: write/remove/move files, then commit with a fixed author and day."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "core.quotePath", "false")

    def git(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> str:
        """Run git in the repository; return its stdout."""
        full = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
        done = subprocess.run(["git", *args], cwd=self.path, env=full, input=stdin, capture_output=True,
                              check=True)  # fmt: skip
        return done.stdout.decode("utf-8", "replace").strip()

    def write(self, name: str | bytes, content: str | bytes) -> None:
        """Create or overwrite a file (bytes names allow non-UTF-8 paths)."""
        target = os.path.join(os.fsencode(self.path), os.fsencode(name))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(content.encode() if isinstance(content, str) else content)

    def read(self, name: str) -> str:
        """A file's current text."""
        return (self.path / name).read_text()

    def remove(self, name: str) -> None:
        """Delete a tracked file."""
        self.git("rm", "-q", name)

    def move(self, old: str, new: str) -> None:
        """Rename a tracked file."""
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def _env(self, email: str, name: str, day: float) -> dict[str, str]:
        when = f"@{int(T0 + day * DAY)} +0000"
        env: dict[str, str] = {}
        for role in ("AUTHOR", "COMMITTER"):
            env |= {f"GIT_{role}_NAME": name, f"GIT_{role}_EMAIL": email, f"GIT_{role}_DATE": when}
        return env

    def commit(self, message: str | bytes, email: str, day: float, name: str = "") -> str:
        """Commit everything in the work tree; return the SHA."""
        self.git("add", "-A")
        raw = message.encode() if isinstance(message, str) else message
        env = self._env(email, name or email.split("@")[0], day)
        self.git("commit", "-q", "--allow-empty", "-F", "-", env=env, stdin=raw)
        return self.git("rev-parse", "HEAD")

    def rewrite_message(self, raw: bytes) -> str:
        """Replace HEAD's message by raw bytes as-is (git itself would transcode non-UTF-8 to UTF-8)."""
        full = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
        run = {"cwd": self.path, "env": full, "capture_output": True, "check": True}
        body = subprocess.run(["git", "cat-file", "commit", "HEAD"], **run).stdout  # type: ignore[call-overload]
        header = body.split(b"\n\n", 1)[0]
        made = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"],
                              input=header + b"\n\n" + raw, **run)  # type: ignore[call-overload]  # fmt: skip
        sha = made.stdout.decode().strip()
        self.git("update-ref", "HEAD", sha)
        return sha

    def merge(self, branch: str, message: str, email: str, day: float) -> str:
        """A merge commit (never a fast-forward) of `branch` into the current branch."""
        self.git("merge", "-q", "--no-ff", "-m", message, branch, env=self._env(email, email.split("@")[0], day))
        return self.git("rev-parse", "HEAD")

    def switch(self, branch: str, create: bool = False) -> None:
        """Move the work tree to another branch of this test repository."""
        self.git("switch", "-q", *(["-c"] if create else []), branch)


@pytest.fixture
def script(tmp_path: Path) -> GitScript:
    """An empty repository on branch main."""
    return GitScript(tmp_path / "repo")


class PredictServer:
    """A tiny real HTTP server standing in for the service's /predict (records bodies, answers as told)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, object]] = []
        self.status = 200
        self.answer: dict[str, object] = prediction("low")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                server.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
                payload = json.dumps(server.answer).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def prediction(band: str) -> dict[str, object]:
    """A /predict answer in the service's documented shape."""
    return {
        "request_id": "r-1", "commit_id": "x", "probability": {"low": 0.1, "medium": 0.5, "high": 0.9}[band],
        "buggy": band == "high", "risk_band": band, "threshold": 0.4, "model_version": 3,
        "factors": [{"feature": "la", "value": 120.0, "median": 10.0, "effect": 0.2,
                     "reason": "la = 120 (median 10) raises risk"}],
    }  # fmt: skip


@pytest.fixture
def predict_server() -> Iterator[PredictServer]:
    """A real HTTP server on 127.0.0.1 answering POST /predict."""
    server = PredictServer()
    yield server
    server.close()
