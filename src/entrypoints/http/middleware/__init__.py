"""Pure ASGI middleware (no BaseHTTPMiddleware). The stack is assembled in `app.py`."""
