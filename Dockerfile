# syntax=docker/dockerfile:1
# Flashbook in one image for every role — web, engine, recorder, bridge, agents; docker-compose.yml
# picks the command. Three build stages: the Rust engine as a wheel (maturin), the pages'
# front-end libraries (npm), then the Python runtime with the collected static files.
# Build: docker build -t flashbook .     Deploy: docs/deploy.md

ARG PYTHON_VERSION=3.11
ARG RUST_VERSION=1
ARG NODE_VERSION=20

# --- 1. The matching engine: the Rust extension built into a wheel -----------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS rust

FROM python:${PYTHON_VERSION}-slim-bookworm AS engine
# The official Rust toolchain on the runtime's own Python, so the wheel is built for exactly the
# interpreter that will load it (the extension is not abi3).
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip install "maturin>=1.9,<2"
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml ./
COPY engine_rs engine_rs
COPY python python
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    maturin build --release --interpreter python3 --out /wheels

# --- 2. The pages' charting libraries from npm (no CDN at run time) -----------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/web_assets.sh scripts/
RUN scripts/web_assets.sh

# --- 3. The runtime ---------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# The wheel carries the engine and lists every Python dependency (pyproject.toml).
COPY --from=engine /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

WORKDIR /app
COPY manage.py ./
COPY flashbook_site flashbook_site
COPY exchange exchange
COPY agents agents
COPY templates templates
COPY static static
COPY deploy deploy
COPY docs/api.md docs/api.md
COPY --from=assets /src/static/vendor static/vendor
# Hashed, compressed static files for WhiteNoise (settings: FLASHBOOK_STATIC_MANIFEST). The
# settings need a key and a database to import; neither is used by collectstatic.
RUN DEBUG=0 SECRET_KEY=collectstatic-only FLASHBOOK_ENV_FILE= \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    python manage.py collectstatic --no-input --verbosity 0 \
    && rm -f /tmp/collectstatic.sqlite3

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin flashbook \
    && mkdir -p /app/var/research-runs && chown -R flashbook /app/var
USER flashbook

# Production defaults; everything else comes from the environment (docs/deploy.md).
ENV DEBUG=0 FLASHBOOK_ENV_FILE= LOG_FORMAT=json PORT=8000 WEB_WORKERS=2
EXPOSE 8000
# The web role's check; docker-compose.yml gives every other role its own.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/healthz\", timeout=4)"]
# gunicorn supervising WEB_WORKERS uvicorn workers (ASGI: HTTP and WebSockets), each with a
# listening socket of its own (reuse_port) so that the proxy's connections spread over them;
# deploy/gunicorn.conf.py holds the settings (JSON logs, as LOG_FORMAT=json asks of every process;
# no access log). The proxy's X-Forwarded-* headers are trusted: only the proxy reaches this port.
CMD ["sh", "-c", "exec gunicorn --config deploy/gunicorn.conf.py --bind \"0.0.0.0:$PORT\" --forwarded-allow-ips '*'"]
