"""The API docs page, offline: Swagger UI with its files served by the app.

The files come from the `offapi` package (Swagger UI's distribution), located through
its installed metadata and read from disk when a browser asks for them: nothing of
them stays in memory. spectree would import `offapi` itself and build three pages
with every asset inlined (Swagger UI, ReDoc, Scalar: about 40 MiB held for the life of
the process), so `entrypoints/http/__init__.py` keeps it from doing so; the page here
is small and its scripts are files, so the CSP allows scripts from `'self'` only.
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

# Served name -> (file in the offapi package, media type).
_FILES = {
    "swagger-ui-bundle.js": ("swagger_bundle.js", "text/javascript"),
    "swagger-ui-standalone-preset.js": ("swagger_preset.js", "text/javascript"),
    "swagger-ui.css": ("swagger_style.css", "text/css"),
}
_INIT = "portico-docs.js"
_INIT_SCRIPT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "%(spec_url)s",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
});
"""
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title>
<link rel="stylesheet" href="%(assets)s/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="%(assets)s/swagger-ui-bundle.js"></script>
<script src="%(assets)s/swagger-ui-standalone-preset.js"></script>
<script src="%(assets)s/%(init)s"></script>
</body>
</html>
"""
# Swagger UI sets style attributes, so styles need 'unsafe-inline'; scripts do not.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@functools.cache
def _asset_files() -> dict[str, Path]:
    """Where offapi's Swagger UI files are, from its metadata (never imported)."""
    found = {
        str(path).rsplit("/", 1)[-1]: Path(str(path.locate()))
        for path in importlib.metadata.files("offapi") or ()
        if str(path).startswith("offapi/")
    }
    return {name: found[file] for name, (file, _) in _FILES.items()}


def docs_routes(spec_url: str, title: str) -> list[Route]:
    """The page and its assets; `LookupError` at startup when the files are missing."""
    files = _asset_files()
    page = _PAGE % {"title": title, "assets": ASSETS_PATH, "init": _INIT}
    init = _INIT_SCRIPT % {"spec_url": spec_url}

    async def docs(request: Request) -> Response:
        return HTMLResponse(page)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == _INIT:
            return Response(init, media_type="text/javascript")
        if name not in files:
            return Response(status_code=404)
        return FileResponse(files[name], media_type=_FILES[name][1])

    return [
        Route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False),
        Route(f"{ASSETS_PATH}/{{name}}", asset, methods=["GET"], include_in_schema=False),
    ]
