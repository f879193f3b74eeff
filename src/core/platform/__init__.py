"""Platform ports: background jobs (the outbox), and later cache and rate limits."""
