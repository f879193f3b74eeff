"""The Celery worker and beat entrypoint: `celery -A entrypoints.worker.celery_app ...`."""
