# syntax=docker/dockerfile:1.7
# agentapi-admin: Django on gunicorn (gthread), static files served by WhiteNoise.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

WORKDIR /app

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

# Dependencies first, in their own layer: editing the code does not reinstall them.
# requirements.txt is the lock file (every package pinned with its hashes: `make lock`), so
# the image gets exactly the tested versions; every one ships manylinux wheels (no compiler).
COPY requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps --require-hashes -r requirements.txt

COPY . .

# collectstatic needs settings that import; these values exist only for this
# RUN (not ENV), so none of them reaches the running container. DEBUG=false
# selects WhiteNoise's compressed, hashed-manifest storage the app serves from.
RUN DEBUG=false \
    READ_ENV_FILE=false \
    SECRET_KEY=build-only-not-a-secret-collectstatic-needs-importable-settings-0000 \
    TOKEN_ENCRYPTION_KEY=1111111111111111111111111111111111111111111111111111111111111111 \
    ALLOWED_HOSTS=build.invalid \
    REDIS_ENABLE=false \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
 && rm -f /tmp/build.sqlite3

# Numeric (the app user's uid:gid), so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8000

# /readyz checks PostgreSQL and Redis; the probe sends a Host from ALLOWED_HOSTS.
HEALTHCHECK --interval=30s --timeout=10s --start-period=40s --retries=3 \
    CMD ["python", "-m", "agentapi_admin.healthcheck"]

CMD ["gunicorn", "--config", "gunicorn.conf.py", "agentapi_admin.wsgi:application"]
