"""`python -m app`: the serving entry — uvicorn with one or several workers (`commitrisk serve` delegates here).

Settings come from `COMMITRISK_*` variables; `--models` sets `COMMITRISK_MODELS_DIR`. Bad input ends the
process with one line on stderr and exit code 2, before any worker starts.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.settings import Settings

EXIT_BAD_INPUT = 2
FACTORY = "app.main:create_app_from_env"


class ServeError(Exception):
    """The service cannot start with these options (the message names the option or variable)."""


def settings_for(models_dir: Path) -> Settings:
    """The settings every worker will build: env variables, with the models directory given."""
    if not models_dir.is_dir():
        raise ServeError(
            f"{models_dir}: models directory does not exist (train one with `commitrisk train --models {models_dir}`)"
        )
    os.environ["COMMITRISK_MODELS_DIR"] = str(models_dir.resolve())
    try:
        settings = Settings()  # fail on a bad COMMITRISK_* value before workers start
    except ValidationError as exc:
        first = exc.errors()[0]
        problem = first["msg"].removeprefix("Value error, ")  # a validator's own message, as written
        raise ServeError(f"COMMITRISK_{str(first['loc'][0]).upper()}: {problem}") from None
    from app.api.tokens import check_file

    try:
        check_file(settings)  # a client tokens file that cannot serve would refuse every client
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    return settings


def check_address(host: str, port: int) -> None:
    """ServeError naming --host/--port when uvicorn could not bind them (its own exit code 3 means a gate here)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ServeError(f"--host: {host!r}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            raise ServeError(f"--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def prepare_multiprocess(workers: int) -> str | None:
    """With several workers /metrics merges them through PROMETHEUS_MULTIPROC_DIR: make it, empty."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers > 1 and not directory:
        directory = tempfile.mkdtemp(prefix="commitrisk-prometheus-")
    if directory:
        # Samples of an earlier run's pids would be merged into ours: start from an empty directory.
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def serve(models_dir: Path, host: str, port: int, workers: int) -> None:
    """Run uvicorn; with several workers each builds its own app (factory) and metrics go multiprocess."""
    import uvicorn

    from app.connection import GuardedHttpToolsProtocol

    settings = settings_for(models_dir)
    check_address(host, port)
    prepare_multiprocess(workers)
    # uvicorn's httptools protocol, plus a deadline and a size cap for request heads (app/connection.py); a
    # partial, not a class attribute, so that it reaches spawned workers.
    protocol = functools.partial(GuardedHttpToolsProtocol, header_timeout=settings.header_timeout_seconds)
    options: dict[str, Any] = {"host": host, "port": port, "access_log": settings.access_log, "http": protocol}
    if workers > 1:
        uvicorn.run(FACTORY, factory=True, workers=workers, **options)
    else:
        from app.main import create_app

        uvicorn.run(create_app(settings), **options)


def parser() -> argparse.ArgumentParser:
    """The options of `python -m app` (the same as `commitrisk serve`)."""
    found = argparse.ArgumentParser(prog="python -m app", description="Serve the champion model over HTTP.")
    found.add_argument("--models", type=Path, default=Path("models"), help="models directory (default: models)")
    found.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    found.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    found.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: 1)")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, serve until stopped; 2 with one line on stderr for bad input."""
    options = parser().parse_args(argv)
    if not 1 <= options.port <= 65535:
        print(f"error: --port: {options.port} is not a TCP port (1-65535)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if options.workers < 1:
        print(f"error: --workers: {options.workers} must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        serve(options.models, options.host, options.port, options.workers)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
