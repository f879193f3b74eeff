"""The Celery app of the worker and beat processes, built from Settings.

    celery -A entrypoints.worker.celery_app worker --pool=prefork --concurrency=4
    celery -A entrypoints.worker.celery_app beat --schedule var/celerybeat-schedule

Broker, queue and timeouts come from `PORTICO_CELERY__*`; JSON only, acks late, prefetch
1, requeue when a worker process dies (`adapters/celery/config.py`). Each worker process
creates its event loop and runtime after the fork and closes them when it exits
(`process.py`); run with `--pool=prefork` (default) or `--pool=solo`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown

from entrypoints.bootstrap.celery import worker_celery_config
from entrypoints.bootstrap.settings import Settings
from entrypoints.worker import process
from entrypoints.worker.beat import beat_schedule
from entrypoints.worker.tasks import register_tasks

settings = Settings()
if settings.jobs.runner != "celery":
    # With the inline runner the relay would queue jobs in a process that never runs them.
    raise RuntimeError("Celery workers and beat need PORTICO_JOBS__RUNNER=celery")
process.configure(settings)

app = Celery("portico")
app.conf.update(worker_celery_config(settings))
app.conf.beat_schedule = beat_schedule(settings)
register_tasks(app)


@worker_process_init.connect
def _start_process(**_: Any) -> None:
    # In the prefork child, after the fork: loops, engines and pools are this process's own.
    process.start()


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    process.stop()


@worker_shutdown.connect
def _stop_solo(**_: Any) -> None:
    # A solo worker runs tasks in its main process; prefork children stopped above.
    process.stop()
