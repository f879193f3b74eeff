"""Security adapters: password hashing."""
