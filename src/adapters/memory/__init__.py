"""In-memory implementations of the core ports (tests and the embedded default)."""
