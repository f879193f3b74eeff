"""Celery: the job dispatcher that publishes committed outbox jobs to Celery."""
