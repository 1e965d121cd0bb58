# syntax=docker/dockerfile:1
# commitrisk container images (multi-stage). Dependencies come only from the pinned closures in
# requirements/ (regenerate with scripts/lock.sh), installed with --no-deps: a build never resolves.
#
#   docker build --target serve   -t commitrisk:0.1.0 .          # the API: core deps only, no scikit-learn
#   docker build --target trainer -t commitrisk-trainer:0.1.0 .  # retrain loop, `commitrisk monitor`, `commitrisk mine`
#
# The last stage (`serve`) is the default target.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

# ---- the project's own wheel (pure Python), built with pinned build requirements ----------------------
FROM base AS wheel
WORKDIR /src
COPY requirements/build.txt /tmp/build.txt
RUN pip install --no-deps --only-binary=:all: -r /tmp/build.txt
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# ---- virtual environments: exactly one lock file each, then the wheel, then a consistency check -------
FROM base AS serve-venv
COPY requirements/serve.txt /tmp/serve.txt
COPY --from=wheel /wheels /wheels
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps --only-binary=:all: -r /tmp/serve.txt \
    && /opt/venv/bin/pip install --no-deps /wheels/commitrisk-*.whl \
    && /opt/venv/bin/pip check

FROM base AS trainer-venv
COPY requirements/trainer.txt /tmp/trainer.txt
COPY --from=wheel /wheels /wheels
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps --only-binary=:all: -r /tmp/trainer.txt \
    && /opt/venv/bin/pip install --no-deps /wheels/commitrisk-*.whl \
    && /opt/venv/bin/pip check

# ---- common runtime: non-root user, writable /models and /data ----------------------------------------
FROM base AS runtime
RUN groupadd --system --gid 10001 commitrisk \
    && useradd --system --no-log-init -l --uid 10001 --gid commitrisk --home-dir /home/commitrisk \
       --create-home --shell /usr/sbin/nologin commitrisk \
    && mkdir -p /models /data \
    && chown commitrisk:commitrisk /models /data
ENV PATH="/opt/venv/bin:${PATH}" \
    COMMITRISK_MODELS_DIR=/models \
    COMMITRISK_DATABASE_URL=sqlite:////data/commitrisk.db
WORKDIR /data

# ---- trainer: `commitrisk retrain --every` (default), `commitrisk monitor` (drift with evidently) or ----
# `commitrisk mine` (the fleet mining Job: pygit2 reads history, the git binary clones, fetches and blames).
FROM runtime AS trainer
# Debian's git, unpinned on purpose: bookworm's point releases replace the exact version (security fixes), so a
# pin would break every rebuild; the base image tag fixes the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
COPY --from=trainer-venv /opt/venv /opt/venv
ENV MPLCONFIGDIR=/tmp/matplotlib \
    COMMITRISK_RETRAIN_EVERY=1d
USER 10001:10001
HEALTHCHECK NONE
# First start on an empty models volume: train version 1 on the embedded default data, then the loop.
CMD ["sh", "-c", "test -s \"$COMMITRISK_MODELS_DIR/champion\" || commitrisk train --models \"$COMMITRISK_MODELS_DIR\"; exec commitrisk retrain --models \"$COMMITRISK_MODELS_DIR\" --every \"$COMMITRISK_RETRAIN_EVERY\""]

# ---- serve: the API (uvicorn); COMMITRISK_WORKERS worker processes ------------------------------------
FROM runtime AS serve
COPY --from=serve-venv /opt/venv /opt/venv
# With several workers /metrics merges them through this directory; `serve` empties it at start.
ENV COMMITRISK_WORKERS=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/commitrisk-prometheus
USER 10001:10001
EXPOSE 8000
# No curl in slim images: the image's own Python asks /health/ready (503 until a model is loaded).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]
CMD ["sh", "-c", "exec commitrisk serve --models \"$COMMITRISK_MODELS_DIR\" --host 0.0.0.0 --port 8000 --workers \"$COMMITRISK_WORKERS\""]
