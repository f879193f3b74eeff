"""The suite's own environment variables versus the developer's.

`PORTICO_TEST_*` variables configure the suite (server URLs, the edge backend) and are
read by the tests themselves. Every other `PORTICO_*` variable is a developer's setting:
it must reach neither a `Settings` built in a test nor a process a test starts.
"""

from __future__ import annotations

from collections.abc import Mapping

TEST_VARIABLES = "PORTICO_TEST_"


def developer_variables(environ: Mapping[str, str]) -> list[str]:
    """Names of the `PORTICO_*` variables in `environ` that a `Settings` would read: any
    case (pydantic-settings ignores it), the suite's `PORTICO_TEST_*` excepted."""
    return [
        name
        for name in environ
        if name.upper().startswith("PORTICO_") and not name.upper().startswith(TEST_VARIABLES)
    ]


def without_developer_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` for a child process, without the developer's settings."""
    ours = set(developer_variables(environ))
    return {name: value for name, value in environ.items() if name not in ours}
