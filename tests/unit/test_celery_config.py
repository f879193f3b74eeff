"""The Celery configuration and beat schedule, built from settings (no broker needed)."""

from __future__ import annotations

import importlib
import sys

import pytest

from adapters.celery.config import CeleryOptions, celery_config
from entrypoints.bootstrap.celery import (
    ENQUEUE_PERIODIC_TASK,
    RELAY_JOBS_TASK,
    RUN_JOB_TASK,
    celery_options,
)
from entrypoints.bootstrap.jobs import PERIODIC_JOBS
from entrypoints.bootstrap.settings import Settings
from entrypoints.worker.beat import RELAY_SWEEP_ENTRY, beat_schedule


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, secret_key="k" * 48, **values)  # type: ignore[arg-type,call-arg]


def test_workers_ack_late_take_one_at_a_time_and_speak_json_only() -> None:
    config = celery_config(CeleryOptions("redis://127.0.0.1:6379/4", queue="q"))
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["task_ignore_result"] and config["result_backend"] is None
    assert config["task_default_queue"] == "q"


def test_redis_brokers_get_a_visibility_timeout_and_a_key_prefix() -> None:
    options = CeleryOptions(
        "redis://127.0.0.1:6379/4", visibility_timeout_seconds=7200, redis_key_prefix="p:"
    )
    worker = celery_config(options)["broker_transport_options"]
    assert worker["visibility_timeout"] == 7200 and worker["global_keyprefix"] == "p:"
    assert "socket_timeout" not in worker  # a consumer blocks in BRPOP
    publisher = celery_config(options, publisher=True)["broker_transport_options"]
    assert publisher["socket_timeout"] == options.publish_timeout_seconds


def test_rabbitmq_publishes_with_confirms_and_timeouts() -> None:
    options = CeleryOptions("amqp://guest:guest@127.0.0.1:5672//", publish_timeout_seconds=3)
    assert celery_config(options)["broker_transport_options"] == {"confirm_publish": True}
    publisher = celery_config(options, publisher=True)["broker_transport_options"]
    assert publisher == {"confirm_publish": True, "read_timeout": 3, "write_timeout": 3}


def test_only_redis_and_rabbitmq_brokers_are_accepted() -> None:
    with pytest.raises(ValueError, match="broker URL"):
        CeleryOptions("sqs://queue")


def test_celery_needs_a_broker_and_a_visibility_timeout_above_the_job_timeout() -> None:
    with pytest.raises(ValueError, match="BROKER_URL"):
        celery_options(settings())
    with pytest.raises(ValueError, match="VISIBILITY_TIMEOUT"):
        celery_options(
            settings(
                celery={"broker_url": "redis://h/0", "visibility_timeout_seconds": 300},
                jobs={"timeout_seconds": 300},
            )
        )
    options = celery_options(settings(celery={"broker_url": "amqp://h//", "queue": "jobs-q"}))
    assert (options.broker_url, options.queue) == ("amqp://h//", "jobs-q")


def test_beat_sweeps_the_relay_and_enqueues_every_periodic_job() -> None:
    schedule = beat_schedule(settings(jobs={"sweep_interval_seconds": 2}))
    sweep = schedule.pop(RELAY_SWEEP_ENTRY)
    assert sweep["task"] == RELAY_JOBS_TASK and sweep["schedule"] == 2
    assert sweep["options"]["expires"] == 4  # stale sweeps are dropped, not piled up
    assert sorted(entry["args"][0] for entry in schedule.values()) == sorted(
        job.name for job in PERIODIC_JOBS
    )
    assert {entry["task"] for entry in schedule.values()} == {ENQUEUE_PERIODIC_TASK}


def test_the_worker_app_is_built_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_JOBS__RUNNER", "celery")
    monkeypatch.setenv("PORTICO_CELERY__BROKER_URL", "redis://127.0.0.1:6399/4")
    monkeypatch.setenv("PORTICO_CELERY__QUEUE", "unit-q")
    module = sys.modules.get("entrypoints.worker.celery_app")
    celery_app = (
        importlib.reload(module)
        if module is not None
        else importlib.import_module("entrypoints.worker.celery_app")
    )
    app = celery_app.app
    assert {RUN_JOB_TASK, RELAY_JOBS_TASK, ENQUEUE_PERIODIC_TASK} <= set(app.tasks)
    assert app.conf.task_default_queue == "unit-q" and app.conf.task_acks_late
    assert RELAY_SWEEP_ENTRY in app.conf.beat_schedule

    monkeypatch.setenv("PORTICO_JOBS__RUNNER", "inline")
    with pytest.raises(RuntimeError, match="PORTICO_JOBS__RUNNER=celery"):
        importlib.reload(celery_app)
