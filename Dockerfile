# The voxline voice agent. Build: docker build -t voxline .   Run: docker run -p 8000:8000 --env-file .env voxline
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only the package sources: the local (offline) engines come from wheels, so no compiler or apt package is needed.
COPY pyproject.toml README.md LICENSE ./
COPY framework ./framework
COPY processors ./processors
COPY apps ./apps
RUN pip install ".[local,openai]"

RUN useradd --create-home --uid 10001 voxline && mkdir -p /app/logs && chown voxline /app/logs
USER voxline

# Keys and settings come from the environment (docker run --env-file .env); see docs/configuration.md.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    LOG_DIR=/app/logs
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"

# Same as `uvicorn voxline.apps.voice_agent:app --host 0.0.0.0 --port 8000`, with the app's own log format.
CMD ["voxline", "serve", "--host", "0.0.0.0", "--port", "8000"]
