"""Memcached adapters: client factory, error translation, key escaping, cache, rate limiter."""
