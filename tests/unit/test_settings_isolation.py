"""No developer's settings reach a test: the autouse `no_developer_settings` fixture of
`tests/conftest.py`, and the environment the suite builds for the processes it starts.

`developer_machine` plays a developer's machine. It is module-scoped, so pytest sets it
up before any function-scoped fixture, the autouse one included: a `.env` saying
`PORTICO_ENV=production` in the working directory, and `PORTICO_DEBUG=true` (plus a
lower-case `portico_log_level`, which pydantic-settings reads too) in the environment.
The class at the end overrides the autouse fixture with one that does nothing: the
control, where the same machine does reach `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.bootstrap.settings import Settings
from tests.environment import without_developer_variables
from tests.integration.celery_processes import REPO, process_env

DEVELOPER_VARIABLES = {"PORTICO_DEBUG": "true", "portico_log_level": "DEBUG"}
SUITE_VARIABLE = ("PORTICO_TEST_ISOLATION_SENTINEL", "kept")


@pytest.fixture(scope="module")
def developer_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("developer")
    (directory / ".env").write_text("PORTICO_ENV=production\nPORTICO_JOBS__CONCURRENCY=42\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        for name, value in (*DEVELOPER_VARIABLES.items(), SUITE_VARIABLE):
            patch.setenv(name, value)
        yield directory


class DerivedSettings(Settings):
    """Subclasses (tests define some) are isolated too."""


@pytest.mark.parametrize("settings_class", [Settings, DerivedSettings])
def test_the_developers_dot_env_and_variables_do_not_reach_settings(
    developer_machine: Path, settings_class: type[Settings]
) -> None:
    assert Path.cwd() == developer_machine and (Path.cwd() / ".env").is_file()
    settings = settings_class()
    assert settings.env == "development"
    assert settings.jobs.concurrency == 4
    assert settings.debug is False
    assert settings.log_level == "INFO"
    # The suite's own variables stay: the tests read them.
    assert os.environ.get(SUITE_VARIABLE[0]) == SUITE_VARIABLE[1]


def test_a_variable_set_in_the_test_itself_is_read(
    developer_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests that configure through the environment still can (the CLI tests do).
    monkeypatch.setenv("PORTICO_DEBUG", "true")
    assert Settings().debug is True


class TestWithoutTheIsolation:
    """The control: the same machine, the autouse fixture replaced by one doing nothing."""

    @pytest.fixture(autouse=True)
    def no_developer_settings(self) -> None:
        return None

    def test_the_developers_dot_env_and_variables_would_reach_settings(
        self, developer_machine: Path
    ) -> None:
        settings = Settings()
        assert settings.env == "production"
        assert settings.jobs.concurrency == 42
        assert settings.debug is True
        assert settings.log_level == "DEBUG"

    def test_a_child_process_gets_none_of_the_developers_variables(
        self, developer_machine: Path
    ) -> None:
        assert set(DEVELOPER_VARIABLES) <= set(os.environ)  # they are there to leak
        child = process_env({"env": "test", "jobs": {"concurrency": 2}})
        assert not set(DEVELOPER_VARIABLES) & set(child)
        assert child["PORTICO_ENV"] == "test" and child["PORTICO_JOBS__CONCURRENCY"] == "2"
        # This checkout's sources first, whatever checkout the virtualenv points at.
        assert child["PYTHONPATH"].split(os.pathsep)[0] == str(REPO / "src")
        assert without_developer_variables({"PORTICO_TEST_X": "1", "Portico_Env": "x"}) == {
            "PORTICO_TEST_X": "1"
        }
