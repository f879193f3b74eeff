"""How the panel is composed with the API: only when enabled (and then only on the SQL
backend), SQLAdmin never imported otherwise, the API's own layers untouched by /admin."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from entrypoints.asgi import PorticoApp, create_asgi_app
from entrypoints.bootstrap.settings import Settings

_PROBE = """
import sys
from entrypoints.asgi import create_asgi_app
from entrypoints.bootstrap.settings import Settings
app = create_asgi_app(Settings(_env_file=None, admin={"enabled": %s}))
print(type(app).__name__, "sqladmin" in sys.modules, "wtforms" in sys.modules)
"""


@pytest.mark.parametrize(
    ("enabled", "expected"),
    [("False", "PorticoStarlette False False"), ("True", "PorticoApp True True")],
)
def test_sqladmin_is_imported_only_when_the_panel_is_enabled(
    enabled: str, expected: str, tmp_path: Path
) -> None:
    done = subprocess.run(  # a fresh interpreter: this one may have imported it already
        [sys.executable, "-c", _PROBE % enabled],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected


def test_the_panel_needs_the_sql_backend() -> None:
    with pytest.raises(ValidationError, match=r"database\.backend=sql"):
        Settings(_env_file=None, admin={"enabled": True}, database={"backend": "memory"})  # type: ignore[call-arg]


def test_allowed_networks_must_be_networks() -> None:
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(_env_file=None, admin={"allowed_networks": ["10.0.0.0/8", "office"]})  # type: ignore[call-arg]
    settings = Settings(_env_file=None, admin={"allowed_networks": [" 10.0.0.0/8 "]})  # type: ignore[call-arg]
    assert settings.admin.allowed_networks == ["10.0.0.0/8"]


def test_only_admin_paths_reach_the_panel(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database={"url": f"sqlite+aiosqlite:///{tmp_path}/p.db"},
        admin={"enabled": True},
    )
    app = create_asgi_app(settings)
    assert isinstance(app, PorticoApp)
    seen: list[str] = []

    async def record(name: str, scope: dict[str, object]) -> None:
        seen.append(f"{name}:{scope['path']}")

    app.api = lambda scope, receive, send: record("api", scope)  # type: ignore[assignment]
    app.admin = lambda scope, receive, send: record("admin", scope)  # type: ignore[assignment]

    async def run() -> None:
        for path in ("/admin", "/admin/users/list", "/administrator", "/adminx/", "/api/v1/users"):
            await app({"type": "http", "path": path}, None, None)  # type: ignore[arg-type]

    asyncio.run(run())
    assert seen == [
        "admin:/admin",
        "admin:/admin/users/list",
        "api:/administrator",
        "api:/adminx/",
        "api:/api/v1/users",
    ]
