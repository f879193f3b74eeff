"""Entrypoints: HTTP, worker, admin and CLI, and the composition root that builds them."""
