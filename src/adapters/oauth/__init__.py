"""OAuth 2.0 / OpenID Connect providers (GitHub, Google) over HTTP, with httpx."""
