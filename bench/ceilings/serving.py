"""Serving a ceiling with the uvicorn flags `portico serve` uses.

`portico_uvicorn_flags()` reads `src/entrypoints/http/server.py` (without importing the
app) and returns the literal keyword arguments of its `uvicorn.run(...)` or
`uvicorn.Config(...)` call (loop, http, access log, lifespan, ...), so a ceiling runs
the same server configuration as Portico even after those flags change. Arguments that
are not literals cannot be read this way: they are listed in `skipped`, and the harness
also checks which event loop and HTTP parser each process really loaded.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Where to serve is the harness's choice, not a flag to copy.
_NOT_COPIED = frozenset({"app", "host", "port", "uds", "fd", "workers", "reload"})


@dataclass(frozen=True)
class UvicornFlags:
    source: str
    flags: dict[str, Any]
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(self.flags.items()))
        loop = self.flags.get("loop", "auto")
        http = self.flags.get("http", "auto")
        text = f"loop={loop!r}, http={http!r} (from {self.source}: {shown})"
        if self.skipped:
            text += f"; not literal, not copied: {', '.join(self.skipped)}"
        return text


def server_module_path() -> Path:
    spec = importlib.util.find_spec("entrypoints.http.server")
    if spec is None or spec.origin is None:
        raise RuntimeError("entrypoints.http.server is not importable: is PYTHONPATH=src set?")
    return Path(spec.origin)


def uvicorn_flags_from_source(source: str, name: str) -> UvicornFlags:
    """The literal keyword arguments of the first `uvicorn.run`/`uvicorn.Config` call."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _is_uvicorn_call(node.func):
            flags: dict[str, Any] = {}
            skipped: list[str] = []
            for keyword in node.keywords:
                if keyword.arg is None or keyword.arg in _NOT_COPIED:
                    continue
                try:
                    flags[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    skipped.append(keyword.arg)
            return UvicornFlags(source=name, flags=flags, skipped=skipped)
    raise RuntimeError(f"no uvicorn.run(...) or uvicorn.Config(...) call found in {name}")


def _is_uvicorn_call(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr in ("run", "Config")
        and isinstance(func.value, ast.Name)
        and func.value.id == "uvicorn"
    )


def portico_uvicorn_flags() -> UvicornFlags:
    path = server_module_path()
    return uvicorn_flags_from_source(path.read_text(encoding="utf-8"), str(path))


def serve(app: Any, port: int, flags_json: str) -> None:
    """Serve `app` on 127.0.0.1:`port` with the flags the harness read from Portico."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, **json.loads(flags_json))
