"""The HTTP entrypoint: a Starlette app from `create_app(settings)`.

It reaches technology only through the core services that bootstrap hands it
(`app.state.runtime`); it never imports an adapter.
"""

import sys

# spectree imports `offapi` when it is installed and builds three docs pages with every
# asset inlined, about 40 MiB for the process's life. The docs page is ours
# (`docs.py`, which reads offapi's files from disk), so spectree must fall back to its
# small online templates, which nothing uses: an entry of None makes its import fail.
# This runs before any module of this package, hence before spectree is imported.
sys.modules.setdefault("offapi", None)  # type: ignore[arg-type]
