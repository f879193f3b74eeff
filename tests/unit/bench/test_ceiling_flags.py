"""The ceilings get the uvicorn flags read from Portico's server module."""

from __future__ import annotations

import pytest

from bench.ceilings.serving import portico_uvicorn_flags, uvicorn_flags_from_source

SOURCE = """
import uvicorn

def serve(settings, host, port):
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        backlog=4096,
        limit_concurrency=settings.http.limit,
    )
"""


def test_literal_flags_are_copied_and_where_to_serve_is_not() -> None:
    flags = uvicorn_flags_from_source(SOURCE, "server.py")
    assert flags.flags == {
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "backlog": 4096,
    }
    assert flags.skipped == ["limit_concurrency"]
    assert "loop='uvloop', http='httptools'" in flags.describe()


def test_a_config_object_is_read_too() -> None:
    source = "import uvicorn\nconfig = uvicorn.Config(app, port=1, loop='asyncio')\n"
    assert uvicorn_flags_from_source(source, "s.py").flags == {"loop": "asyncio"}


def test_a_module_without_a_uvicorn_call_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no uvicorn"):
        uvicorn_flags_from_source("import uvicorn\nprint(uvicorn)\n", "s.py")


def test_portico_s_own_server_module_is_readable() -> None:
    flags = portico_uvicorn_flags()
    assert flags.source.endswith("entrypoints/http/server.py")
    # serve() turns uvicorn's access log off (the app logs itself): a flag that must carry.
    assert flags.flags["access_log"] is False
    assert not flags.skipped
