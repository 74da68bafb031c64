# mjcord as a container: the bot process only (PostgreSQL and the image API live elsewhere).
# Linted by hadolint in `make test`; these development machines have no Docker engine, so the
# image is linted, not built, here.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Exact versions with hashes, the same pins CI tests (runtime dependencies only).
COPY requirements.runtime.lock ./
RUN pip install --require-hashes --no-deps -r requirements.runtime.lock

COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 mjcord \
    && mkdir /data \
    && chown mjcord /data

USER 10001
# SQLite by default for a single container; set DATABASE_URL=postgresql://… for anything more.
ENV DATABASE_URL=sqlite:////data/mjcord.db \
    PORT=8080
VOLUME ["/data"]
EXPOSE 8080

# /healthz answers 200 while the gateway is connected and the database answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4)"]

ENTRYPOINT ["mjcord"]
CMD ["run"]
