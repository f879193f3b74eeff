# syntax=docker/dockerfile:1
# Portico's image: one for the API, the Celery worker, beat and the CLI (the command
# differs). Two stages: the builder makes the virtual environment (with pip and the
# build tools), the runtime stage copies it into a slim image that runs as a non-root user.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/portico
ENV PATH=/opt/portico/bin:$PATH
WORKDIR /app
# Dependencies first (a layer that changes only with pyproject.toml), then the code.
COPY pyproject.toml ./
RUN pip install --upgrade pip setuptools wheel \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY src ./src
# Editable, so the package runs from /app/src beside /app/migrations (the runtime stage
# puts both at the same paths); the migrations are found from the package's location.
RUN pip install --no-deps -e . \
    && find /opt/portico -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim AS runtime
ENV PATH=/opt/portico/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORTICO_ENV=production
RUN groupadd --system --gid 10001 portico \
    && useradd --system --uid 10001 --gid portico --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin portico
WORKDIR /app
COPY --from=builder /opt/portico /opt/portico
COPY --from=builder /app/src ./src
COPY alembic.ini ./
COPY migrations ./migrations
# The only writable place (SQLite and beat's schedule, when used); the code is root's.
RUN mkdir -p /app/var && chown portico:portico /app/var
USER 10001:10001
EXPOSE 8000
# Liveness of the API (the worker and beat services override it in docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3).status != 200)"]
CMD ["portico", "serve", "--host", "0.0.0.0", "--port", "8000"]
