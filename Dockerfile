FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . && useradd --create-home portico && chown -R portico /app
USER portico
EXPOSE 8000
CMD ["portico", "serve", "--host", "0.0.0.0", "--port", "8000"]
