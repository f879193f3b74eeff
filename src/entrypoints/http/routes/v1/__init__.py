"""Version 1 of the public API, under /api/v1 (see API.md)."""
