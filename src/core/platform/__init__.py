"""Platform ports: background jobs (the outbox), cache and rate limits."""
