# The voxline voice agent. Build: docker build -t voxline .   Run: docker run -p 8000:8000 --env-file .env voxline
# Several behind a proxy, with Redis for resuming: docker-compose.yml and docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only the package sources: the local (offline) engines come from wheels, so no compiler or apt package is needed.
# `server` adds Redis sessions (REDIS_URL) and OpenTelemetry spans (TRACING=otel).
COPY pyproject.toml README.md LICENSE ./
COPY framework ./framework
COPY processors ./processors
COPY apps ./apps
RUN pip install ".[local,openai,server]"

RUN useradd --create-home --uid 10001 voxline && mkdir -p /app/logs && chown voxline /app/logs
USER voxline

# Keys and settings come from the environment (docker run --env-file .env); see docs/configuration.md.
# `voxline serve` reads HOST and PORT: `-e PORT=9000 -p 9000:9000` moves the server and its health check.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    LOG_DIR=/app/logs
EXPOSE 8000
# Liveness (/livez stays 200 while the agent drains; /health is for load balancers), on the port it serves.
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/livez\", timeout=2)"

# SIGTERM (docker stop) drains: live conversations finish their replies first, for up to DRAIN_TIMEOUT (30 s).
# Give it the time: `docker stop -t 40`, or stop_grace_period in compose (docker kills after 10 s by default).
STOPSIGNAL SIGTERM
CMD ["voxline", "serve"]
