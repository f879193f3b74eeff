"""The HTTP entrypoint: a Starlette app from `create_app(settings)`.

It reaches technology only through the core services that bootstrap hands it
(`app.state.runtime`); it never imports an adapter.
"""
