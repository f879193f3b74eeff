"""The model: a real one, reached with a key, over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule, warning
from entrypoints.bootstrap.security_check.urls import is_loopback
from entrypoints.bootstrap.settings import Settings

_BACKEND = "llm.backend"
_BASE_URL = "llm.base_url"
_API_KEY = "llm.api_key"
_DEFAULT_MODEL = "llm.default_model"
FAKE_MODEL = "portico-fake"


@rule(_BACKEND, _DEFAULT_MODEL)
def llm_fake_model(settings: Settings) -> Iterator[Finding]:
    # The fake answers with canned text: users would pay credits for nothing.
    if settings.llm.backend == "fake":
        yield error(
            "llm.fake_model",
            _BACKEND,
            f"{env_var(_BACKEND)}=fake answers with scripted text; set it to openai",
        )
    elif settings.llm.default_model == FAKE_MODEL:
        yield error(
            "llm.fake_default_model",
            _DEFAULT_MODEL,
            f"{env_var(_DEFAULT_MODEL)} is the fake's model; name a model your server serves",
        )


@rule(_BACKEND, _BASE_URL, _API_KEY)
def llm_openai_connection(settings: Settings) -> Iterator[Finding]:
    llm = settings.llm
    if llm.backend != "openai":
        return
    if not llm.base_url:
        yield error("llm.base_url_missing", _BASE_URL, f"set {env_var(_BASE_URL)}")
    elif llm.base_url.startswith("http://") and not is_loopback(urlsplit(llm.base_url).hostname):
        yield warning(
            "llm.base_url_plain_http",
            _BASE_URL,
            f"{env_var(_BASE_URL)} is plain http to another host: prompts and the key travel "
            "unencrypted",
        )
    if llm.api_key is None or not llm.api_key.get_secret_value().strip():
        yield error("llm.api_key_missing", _API_KEY, f"set {env_var(_API_KEY)}")
