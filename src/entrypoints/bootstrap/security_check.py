"""The production security check (ARCHITECTURE.md section 7).

`start_runtime` calls `startup_check(settings)` first thing when
`PORTICO_ENV=production`: any error-level finding raises `SecurityCheckFailed`, which lists
every problem at once (fixing them one restart at a time would be miserable), and nothing
has been built yet. `portico check-config` prints the same findings without starting.

A rule is a plain function `Settings -> Iterable[Finding]`, registered in `RULES`. Rules
read settings only (no network, no files), so the check is fast and deterministic and the
CLI can run it anywhere. Adding a rule: write the function, add it to `RULES`, add a test
that it fires on a bad value and stays quiet on the known-good configuration.

Findings never contain a secret value, not even a fragment: they name the variable to fix
and the kind of problem, because the report ends up in logs and CI output.

Settings that other parts of Portico have not added yet (admin panel, CORS, payments, LLM
backends, cache and rate-limit backends) are read with `getattr`, so their rules start
applying the day the setting appears, without touching this file.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from adapters.security.argon2 import MIN_MEMORY_COST_KIB, MIN_TIME_COST
from entrypoints.bootstrap.settings import Settings

Severity = Literal["error", "warning"]

_log = structlog.get_logger("portico.security_check")

ENV_PREFIX = "PORTICO_"

# Thresholds. Named so tests and docs can refer to them.
MIN_SECRET_KEY_LENGTH = 32
# Estimated from the key's own character frequencies (see `_estimated_bits`). A backstop
# for skewed keys only: typed passphrases score 100+ too, so the word and pattern checks do
# the real work. A random 32-character hex key (128 real bits) averages ~115 and scored no
# lower than 89 in 300,000 draws, so 64 never refuses an honest key.
MIN_SECRET_KEY_BITS = 64
MIN_SECRET_KEY_DISTINCT_CHARS = 8
# Runs this long of one character or of consecutive characters ("abcdefgh", "87654321")
# are typed, not generated: a random hex key has one with probability ~1e-7.
MAX_SECRET_KEY_RUN = 7
MAX_SESSION_IDLE_SECONDS = 8 * 3600
MAX_SESSION_ABSOLUTE_SECONDS = 30 * 24 * 3600
# Bearer tokens: an access token cannot be revoked before it expires; a refresh token
# family lives as long as a browser session at most, give or take.
MAX_ACCESS_TOKEN_SECONDS = 3600
MAX_REFRESH_TOKEN_SECONDS = 90 * 24 * 3600

# Placeholder words seen in real leaked configurations. Words of six letters or more are
# looked for anywhere in the key (separators removed): a random 64-character key contains
# one of them by chance about once in a million. Shorter ones would match random keys far
# too often (`dev` is in about 1 in 500, and even as a `-dev-` token in 1 in 50,000 base64
# keys), so they count only as whole words of a single-case key ("dev-key-for-local"):
# generated base64 keys mix cases, and hex keys have no separators.
_PLACEHOLDER_WORDS = (
    "secret",
    "changeme",
    "password",
    "passwd",
    "default",
    "insecure",
    "example",
    "portico",
    "replace",
    "placeholder",
    "qwerty",
    "letmein",
    "development",
    "production",
    "staging",
    "sample",
    "django",
    "fastapi",
)
_PLACEHOLDER_TOKENS = frozenset(
    {
        "dev",
        "test",
        "demo",
        "key",
        "todo",
        "fixme",
        "admin",
        "dummy",
        "local",
        "prod",
        "pass",
        "temp",
        "foo",
        "bar",
        "xxx",
        "abc",
        "123",
        "1234",
        "12345",
    }
)

# Database passwords that ship as defaults in images, tutorials and compose files.
_DEFAULT_DATABASE_PASSWORDS = frozenset(
    {"postgres", "password", "admin", "root", "changeme", "secret", "portico", "example", "test"}
)
# RabbitMQ's built-in account (only allowed from localhost by RabbitMQ itself, but images
# and compose files often re-enable it).
_DEFAULT_AMQP_CREDENTIALS = frozenset({("guest", "guest")})

# Where a Redis backend can be selected: (settings section, attribute). Sections that do
# not exist yet are skipped.
_REDIS_BACKEND_SETTINGS = (
    ("sessions", "backend"),
    ("cache", "backend"),
    ("rate_limit", "backend"),
)
# Lists of browser origins trusted for credentialed or unsafe requests.
_ORIGIN_SETTINGS = (
    ("http", "trusted_origins"),
    ("cors", "allow_origins"),
    ("cors", "origins"),
    ("cors", "allowed_origins"),
)
# Names an admin IP allow-list may get once the admin settings exist.
_ADMIN_ALLOW_LIST_ATTRIBUTES = ("allowed_ips", "ip_allow_list", "ip_allowlist", "allowed_networks")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: a stable rule id, how bad it is, and what to change.

    `setting` is the environment variable to fix; `message` says why, and never contains
    the value of a secret.
    """

    rule: str
    severity: Severity
    setting: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "setting": self.setting,
            "message": self.message,
        }


Rule = Callable[[Settings], Iterable[Finding]]


class SecurityCheckFailed(RuntimeError):
    """Production start refused; `findings` holds every error and warning found."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        lines = [f"  - [{f.rule}] {f.message}" for f in self.errors]
        super().__init__(
            f"refusing to start with PORTICO_ENV=production: {len(lines)} security "
            "problem(s) in the configuration (run `portico check-config` for the report):\n"
            + "\n".join(lines)
        )

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def env_var(*path: str) -> str:
    """`env_var("sessions", "cookie_secure")` -> `PORTICO_SESSIONS__COOKIE_SECURE`."""
    return ENV_PREFIX + "__".join(part.upper() for part in path)


def _error(rule: str, setting: str, message: str) -> Finding:
    return Finding(rule, "error", setting, message)


def _warning(rule: str, setting: str, message: str) -> Finding:
    return Finding(rule, "warning", setting, message)


def _section(settings: Settings, name: str) -> Any:
    """A settings section, or None when this version of Portico does not have it."""
    return getattr(settings, name, None)


# --- network helpers --------------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    """True for localhost and loopback addresses: traffic that never leaves the machine."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_password(url: str) -> tuple[str | None, str | None]:
    """(username, password) from a URL's userinfo or its `?password=` query parameter."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    password = parts.password
    if password is None and query.get("password"):
        password = query["password"][0]
    username = parts.username
    return (
        unquote(username) if username is not None else None,
        unquote(password) if password is not None else None,
    )


# --- secret key -------------------------------------------------------------------------


def _estimated_bits(key: str) -> float:
    """Shannon entropy of the key's own character frequencies, times its length.

    An over-estimate for patterned keys (those are caught by the pattern checks), a fair
    one for random keys, and zero for `"aaaa..."`.
    """
    counts = Counter(key)
    n = len(key)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) * n


def _longest_run(key: str) -> int:
    """Longest run of one repeated character or of consecutive code points (up or down)."""
    best = same = up = down = 1
    for previous, current in pairwise(key):
        step = ord(current) - ord(previous)
        same = same + 1 if step == 0 else 1
        up = up + 1 if step == 1 else 1
        down = down + 1 if step == -1 else 1
        best = max(best, same, up, down)
    return best if key else 0


def _is_periodic(key: str) -> bool:
    """True when the key repeats a shorter unit: "abcabcabcabc", "Secret1!Secret1!"."""
    n = len(key)
    return any(all(key[i] == key[i - p] for i in range(p, n)) for p in range(1, n // 2 + 1))


def secret_key_weakness(key: str) -> str | None:
    """Why the key looks typed rather than generated, or None. Never quotes the key."""
    lowered = key.lower()
    squeezed = re.sub(r"[^a-z0-9]", "", lowered)
    single_case = key in (lowered, key.upper())
    tokens = re.split(r"[^a-z0-9]+", lowered) if single_case else []
    if any(word in squeezed for word in _PLACEHOLDER_WORDS) or any(
        token in _PLACEHOLDER_TOKENS for token in tokens
    ):
        return "it contains a common placeholder word (secret, changeme, dev, ...)"
    if len(set(key)) < MIN_SECRET_KEY_DISTINCT_CHARS:
        return f"it uses fewer than {MIN_SECRET_KEY_DISTINCT_CHARS} distinct characters"
    if _is_periodic(key):
        return "it repeats a shorter pattern"
    if _longest_run(key) > MAX_SECRET_KEY_RUN:
        return "it contains a long run of repeated or consecutive characters"
    # Short keys are reported by their own rule; an entropy estimate adds nothing there.
    if len(key) >= MIN_SECRET_KEY_LENGTH and _estimated_bits(key) < MIN_SECRET_KEY_BITS:
        return f"its characters carry too little randomness (under ~{MIN_SECRET_KEY_BITS} bits)"
    return None


_SECRET_KEY_FIX = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"


def rule_secret_key_missing(settings: Settings) -> Iterator[Finding]:
    # A key made per process breaks every signed token at restart and between processes.
    if settings.secret_key_generated:
        yield _error(
            "secret_key.missing",
            env_var("secret_key"),
            f"{env_var('secret_key')} is not set (a random key per process invalidates "
            f"tokens at every restart and differs between processes); {_SECRET_KEY_FIX}",
        )


def rule_secret_key_short(settings: Settings) -> Iterator[Finding]:
    if settings.secret_key_generated:
        return
    if len(settings.secret()) < MIN_SECRET_KEY_LENGTH:
        yield _error(
            "secret_key.short",
            env_var("secret_key"),
            f"{env_var('secret_key')} is shorter than {MIN_SECRET_KEY_LENGTH} characters; "
            f"{_SECRET_KEY_FIX}",
        )


def rule_secret_key_predictable(settings: Settings) -> Iterator[Finding]:
    if settings.secret_key_generated:
        return
    reason = secret_key_weakness(settings.secret())
    if reason:
        yield _error(
            "secret_key.predictable",
            env_var("secret_key"),
            f"{env_var('secret_key')} looks predictable: {reason}; {_SECRET_KEY_FIX}",
        )


# --- process ----------------------------------------------------------------------------


def rule_debug(settings: Settings) -> Iterator[Finding]:
    if settings.debug:
        yield _error(
            "debug",
            env_var("debug"),
            f"{env_var('debug')} is on (SQL echo with parameter values in the logs); "
            "set it to false",
        )


def rule_docs_enabled(settings: Settings) -> Iterator[Finding]:
    # Not a vulnerability by itself (the API is public anyway), but it maps the attack
    # surface for anyone; many deployments want it, so only a warning.
    if settings.http.docs_enabled:
        yield _warning(
            "http.docs_enabled",
            env_var("http", "docs_enabled"),
            f"interactive API docs are served at /docs; set {env_var('http', 'docs_enabled')}"
            "=false unless they are meant to be public",
        )


# --- sessions and browsers --------------------------------------------------------------


def rule_cookie_secure(settings: Settings) -> Iterator[Finding]:
    # `settings` is evaluated as production here, so an unset value resolves to True and
    # only an explicit false lands here.
    if not settings.cookie_secure:
        yield _error(
            "sessions.cookie_insecure",
            env_var("sessions", "cookie_secure"),
            f"{env_var('sessions', 'cookie_secure')} is false: session cookies would travel "
            "over plain HTTP and lose the __Host- prefix; remove it or set it to true",
        )


def rule_session_idle_timeout(settings: Settings) -> Iterator[Finding]:
    idle = settings.sessions.idle_timeout_seconds
    if idle > MAX_SESSION_IDLE_SECONDS:
        yield _error(
            "sessions.idle_timeout_too_long",
            env_var("sessions", "idle_timeout_seconds"),
            f"{env_var('sessions', 'idle_timeout_seconds')} is {idle}s: an unattended "
            f"browser stays signed in too long; use at most {MAX_SESSION_IDLE_SECONDS}s (8 h)",
        )


def rule_session_absolute_lifetime(settings: Settings) -> Iterator[Finding]:
    lifetime = settings.sessions.absolute_lifetime_seconds
    if lifetime > MAX_SESSION_ABSOLUTE_SECONDS:
        yield _error(
            "sessions.absolute_lifetime_too_long",
            env_var("sessions", "absolute_lifetime_seconds"),
            f"{env_var('sessions', 'absolute_lifetime_seconds')} is {lifetime}s: a stolen "
            f"session stays usable too long; use at most {MAX_SESSION_ABSOLUTE_SECONDS}s "
            "(30 days)",
        )


def rule_session_store(settings: Settings) -> Iterator[Finding]:
    # In-memory sessions vanish at restart and are not shared between processes, so a
    # load balancer would log users out at random and logout would not reach the others.
    if settings.sessions.backend == "memory":
        yield _error(
            "sessions.memory_store",
            env_var("sessions", "backend"),
            f"{env_var('sessions', 'backend')}=memory keeps sessions in one process (lost "
            "at restart, invisible to other processes); set it to redis",
        )


def rule_token_lifetimes(settings: Settings) -> Iterator[Finding]:
    # Warnings, not errors: the settings' own bounds already stop the absurd values, and
    # between those bounds the trade-off (fewer logins vs. a longer window for a stolen
    # token) is the product's call.
    tokens = _section(settings, "tokens")
    access = getattr(tokens, "access_ttl_seconds", None)
    if access is not None and access > MAX_ACCESS_TOKEN_SECONDS:
        yield _warning(
            "tokens.access_ttl_too_long",
            env_var("tokens", "access_ttl_seconds"),
            f"{env_var('tokens', 'access_ttl_seconds')} is {access}s: a stolen access token "
            f"stays valid that long, logout or not; prefer at most {MAX_ACCESS_TOKEN_SECONDS}s",
        )
    refresh = getattr(tokens, "refresh_ttl_seconds", None)
    if refresh is not None and refresh > MAX_REFRESH_TOKEN_SECONDS:
        yield _warning(
            "tokens.refresh_ttl_too_long",
            env_var("tokens", "refresh_ttl_seconds"),
            f"{env_var('tokens', 'refresh_ttl_seconds')} is {refresh}s: an unused device "
            f"stays signed in that long; prefer at most {MAX_REFRESH_TOKEN_SECONDS}s (90 days)",
        )


def _bad_origin(origin: str) -> str | None:
    if "*" in origin:
        return "a wildcard"
    if origin.strip().lower() == "null":
        # Sandboxed iframes and file:// pages send `Origin: null`: anyone can.
        return "the `null` origin"
    parts = urlsplit(origin)
    if parts.scheme != "https":
        return "a non-https origin"
    return None


def rule_trusted_origins(settings: Settings) -> Iterator[Finding]:
    for section, attribute in _ORIGIN_SETTINGS:
        origins = getattr(_section(settings, section), attribute, None)
        if not origins:
            continue
        name = env_var(section, attribute)
        problems = sorted({p for o in origins if (p := _bad_origin(str(o)))})
        if problems:
            yield _error(
                "http.trusted_origins",
                name,
                f"{name} contains {', '.join(problems)}: only list exact https:// origins "
                "of your own front ends",
            )


def rule_frontend_url(settings: Settings) -> Iterator[Finding]:
    # Verification and reset links carry live tokens; over http they can be read in transit.
    if urlsplit(settings.accounts.frontend_url).scheme != "https":
        yield _error(
            "accounts.frontend_url_not_https",
            env_var("accounts", "frontend_url"),
            f"{env_var('accounts', 'frontend_url')} is not https: links in verification "
            "and password-reset mail carry live tokens",
        )


def _enabled_oauth_providers(settings: Settings) -> list[str]:
    oauth = _section(settings, "oauth")
    if oauth is None:
        return []
    return [name for name, p in oauth.providers().items() if p.enabled]


def rule_oauth_fake_provider(settings: Settings) -> Iterator[Finding]:
    # The in-process fake approves whatever a test tells it: anyone as anyone.
    if _enabled_oauth_providers(settings) and settings.oauth.backend == "memory":
        yield _error(
            "oauth.memory",
            env_var("oauth", "backend"),
            f"{env_var('oauth', 'backend')}=memory signs in with a fake provider that lets "
            "anyone sign in as anyone; set it to http",
        )


def rule_oauth_urls(settings: Settings) -> Iterator[Finding]:
    # The callback carries the authorization code and the state cookie is Secure (it
    # would never come back over http); provider endpoints get the client secret and
    # hand out access tokens.
    enabled = _enabled_oauth_providers(settings)
    if not enabled:
        return
    if urlsplit(settings.oauth.redirect_base_url).scheme != "https":
        yield _error(
            "oauth.redirect_not_https",
            env_var("oauth", "redirect_base_url"),
            f"{env_var('oauth', 'redirect_base_url')} is not https: authorization codes "
            "would come back in the clear (and the Secure state cookie would not)",
        )
    for name in enabled:
        provider = settings.oauth.providers()[name]
        for attribute in ("authorize_url", "token_url", "userinfo_url", "emails_url"):
            url = getattr(provider, attribute, None)
            if url is not None and urlsplit(url).scheme != "https":
                yield _error(
                    "oauth.endpoint_not_https",
                    env_var("oauth", name, attribute),
                    f"{env_var('oauth', name, attribute)} is not https: the client secret "
                    "and access tokens would travel in the clear",
                )


# --- database ---------------------------------------------------------------------------


def rule_database_backend(settings: Settings) -> Iterator[Finding]:
    if settings.database.backend == "memory":
        yield _error(
            "database.memory",
            env_var("database", "backend"),
            f"{env_var('database', 'backend')}=memory keeps every account in process memory "
            "(lost at restart); set it to sql with a Postgres URL",
        )


def rule_database_url(settings: Settings) -> Iterator[Finding]:
    if settings.database.backend != "sql":
        return  # the URL is unused; the backend rule reports the real problem
    name = env_var("database", "url")
    try:
        url = make_url(settings.database.url)
    except ArgumentError:
        yield _error("database.url_invalid", name, f"{name} is not a valid database URL")
        return
    if url.get_backend_name() == "sqlite":
        yield _error(
            "database.sqlite",
            name,
            f"{name} points to SQLite, which is for the embedded profile only (one "
            "machine, no concurrent writers); use postgresql+asyncpg://...",
        )
        return
    password = url.password
    if password is None and "password" in url.query:
        value = url.query["password"]
        password = value if isinstance(value, str) else value[0]
    # No host (or a directory as host) means a Unix socket, where peer authentication
    # needs no password at all.
    query_host = url.query.get("host")
    on_socket = not url.host or str(query_host or "").startswith("/")
    if not password:
        if not on_socket:
            yield _error(
                "database.password_empty",
                name,
                f"{name} has no password for a network connection; set a strong one",
            )
        return
    username = url.username or ""
    if password.lower() in _DEFAULT_DATABASE_PASSWORDS or password == username:
        yield _error(
            "database.password_default",
            name,
            f"{name} uses a default or guessable password (a well-known default or the user "
            "name); set a strong one",
        )


def rule_database_auto_create(settings: Settings) -> Iterator[Finding]:
    # Tables created from the records bypass migrations: the schema drifts from the
    # migration history, and the next `db upgrade` fails or does damage.
    if settings.database.auto_create:
        yield _error(
            "database.auto_create",
            env_var("database", "auto_create"),
            f"{env_var('database', 'auto_create')} is on; set it to false and run "
            "`portico db upgrade` instead",
        )


# --- passwords --------------------------------------------------------------------------


def rule_weak_hashing_allowed(settings: Settings) -> Iterator[Finding]:
    if settings.passwords.allow_weak_hashing:
        yield _error(
            "passwords.weak_hashing_allowed",
            env_var("passwords", "allow_weak_hashing"),
            f"{env_var('passwords', 'allow_weak_hashing')} is on (tests only); set it to false",
        )


def rule_argon2_parameters(settings: Settings) -> Iterator[Finding]:
    p = settings.passwords
    if p.argon2_memory_kib < MIN_MEMORY_COST_KIB:
        yield _error(
            "passwords.argon2_below_floor",
            env_var("passwords", "argon2_memory_kib"),
            f"{env_var('passwords', 'argon2_memory_kib')} is below the OWASP floor of "
            f"{MIN_MEMORY_COST_KIB} KiB",
        )
    if p.argon2_time_cost < MIN_TIME_COST:
        yield _error(
            "passwords.argon2_below_floor",
            env_var("passwords", "argon2_time_cost"),
            f"{env_var('passwords', 'argon2_time_cost')} is below the OWASP floor of "
            f"{MIN_TIME_COST} iterations",
        )


# --- Redis and the Celery broker --------------------------------------------------------


def _redis_selected_by(settings: Settings) -> list[str]:
    """The env vars that select a Redis backend."""
    return [
        env_var(section, attribute)
        for section, attribute in _REDIS_BACKEND_SETTINGS
        if getattr(_section(settings, section), attribute, None) == "redis"
    ]


def _celery_broker(settings: Settings) -> str | None:
    """The broker URL when Celery is in use (runner or a configured broker), else None."""
    broker = settings.celery.broker_url
    if broker or settings.jobs.runner == "celery":
        return broker
    return None


def _redis_urls(settings: Settings) -> list[tuple[str, str]]:
    """(env var, URL) of every Redis connection this configuration opens."""
    urls: list[tuple[str, str]] = []
    # An unused URL opens no connection, so it is checked only once a backend selects it.
    if settings.redis.url and _redis_selected_by(settings):
        urls.append((env_var("redis", "url"), settings.redis.url))
    broker = _celery_broker(settings)
    if broker and urlsplit(broker).scheme.lower() in ("redis", "rediss"):
        urls.append((env_var("celery", "broker_url"), broker))
    return urls


def rule_rate_limit_store(settings: Settings) -> Iterator[Finding]:
    # In-process counts are per process: behind N workers every limit (and the sign-in
    # throttle) is N times looser, and a restart forgets them.
    if settings.rate_limit.backend == "memory":
        yield _warning(
            "rate_limit.memory_store",
            env_var("rate_limit", "backend"),
            f"{env_var('rate_limit', 'backend')}=memory counts per process, so limits and "
            "sign-in throttles loosen with every worker; set it to redis or memcached",
        )


def rule_rate_limits_disabled(settings: Settings) -> Iterator[Finding]:
    if not settings.rate_limit.enabled:
        yield _warning(
            "rate_limit.disabled",
            env_var("rate_limit", "enabled"),
            f"{env_var('rate_limit', 'enabled')}=false serves every client without limits",
        )


def rule_trusted_proxies(settings: Settings) -> Iterator[Finding]:
    # Trusting everyone lets any client write its own address into X-Forwarded-For and
    # so pick a fresh rate-limit key (and a fake audit address) on every request.
    for item in settings.http.trusted_proxies:
        if ipaddress.ip_network(item, strict=False).prefixlen == 0:
            yield _error(
                "http.trust_every_proxy",
                env_var("http", "trusted_proxies"),
                f"{env_var('http', 'trusted_proxies')} contains {item}, which trusts every "
                "client's X-Forwarded-For; list your proxies' addresses only",
            )


def rule_redis_url_missing(settings: Settings) -> Iterator[Finding]:
    selected = _redis_selected_by(settings)
    if selected and not settings.redis.url:
        yield _error(
            "redis.url_missing",
            env_var("redis", "url"),
            f"{', '.join(selected)} select Redis but {env_var('redis', 'url')} is not set",
        )


def rule_redis_password(settings: Settings) -> Iterator[Finding]:
    for name, url in _redis_urls(settings):
        if urlsplit(url).scheme.lower() == "unix":
            continue  # a socket file: access is governed by its permissions
        _, password = _url_password(url)
        if not password:
            yield _error(
                "redis.no_password",
                name,
                f"{name} has no password: anyone who reaches the server reads and writes "
                "sessions; use redis://:PASSWORD@host (or rediss://)",
            )


def rule_redis_tls(settings: Settings) -> Iterator[Finding]:
    for name, url in _redis_urls(settings):
        parts = urlsplit(url)
        if parts.scheme.lower() == "redis" and not _is_loopback(parts.hostname):
            yield _warning(
                "redis.no_tls",
                name,
                f"{name} uses redis:// to a host that is not local: traffic (session data, "
                "password) is unencrypted; use rediss:// unless the network is private",
            )


def rule_amqp_broker(settings: Settings) -> Iterator[Finding]:
    broker = _celery_broker(settings)
    if not broker or urlsplit(broker).scheme.lower() not in ("amqp", "amqps", "pyamqp"):
        return
    name = env_var("celery", "broker_url")
    username, password = _url_password(broker)
    if not password or (username or "", password) in _DEFAULT_AMQP_CREDENTIALS:
        yield _error(
            "celery.broker_credentials",
            name,
            f"{name} has no password or RabbitMQ's default guest account; create a user "
            "with a strong password",
        )
    parts = urlsplit(broker)
    if parts.scheme.lower() != "amqps" and not _is_loopback(parts.hostname):
        yield _warning(
            "celery.broker_no_tls",
            name,
            f"{name} uses plain AMQP to a host that is not local; use amqps:// unless the "
            "network is private",
        )


def rule_celery_broker_missing(settings: Settings) -> Iterator[Finding]:
    if settings.jobs.runner == "celery" and not settings.celery.broker_url:
        yield _error(
            "celery.broker_missing",
            env_var("celery", "broker_url"),
            f"{env_var('jobs', 'runner')}=celery but {env_var('celery', 'broker_url')} is not set",
        )


# --- mail -------------------------------------------------------------------------------


def rule_email_backend(settings: Settings) -> Iterator[Finding]:
    # `console` writes every mail, live reset tokens included, to the logs; `memory` drops
    # them, so nobody can verify an address or reset a password.
    backend = settings.email.backend
    if backend in ("console", "memory"):
        effect = (
            "prints mail, live reset tokens included, to stderr"
            if backend == "console"
            else "never delivers mail"
        )
        yield _error(
            "email.backend",
            env_var("email", "backend"),
            f"{env_var('email', 'backend')}={backend} {effect}; set it to smtp",
        )


def rule_smtp_tls(settings: Settings) -> Iterator[Finding]:
    smtp = settings.smtp
    if settings.email.backend != "smtp" or smtp.starttls or smtp.use_tls:
        return
    if not _is_loopback(smtp.host):
        yield _warning(
            "smtp.no_tls",
            env_var("smtp", "starttls"),
            f"mail to {env_var('smtp', 'host')} travels unencrypted (tokens in links); set "
            f"{env_var('smtp', 'starttls')}=true (port 587) or {env_var('smtp', 'use_tls')}"
            "=true (port 465)",
        )


# --- settings Portico does not have yet (the rules apply once they exist) ---------------


def rule_admin_ip_allow_list(settings: Settings) -> Iterator[Finding]:
    """An enabled admin panel needs an IP allow-list that is not "everyone".

    Portico has no admin settings yet; this applies as soon as `settings.admin.enabled`
    exists, with the allow-list under one of `_ADMIN_ALLOW_LIST_ATTRIBUTES`.
    """
    admin = _section(settings, "admin")
    if admin is None or not getattr(admin, "enabled", False):
        return
    attribute = next((a for a in _ADMIN_ALLOW_LIST_ATTRIBUTES if hasattr(admin, a)), None)
    name = env_var("admin", attribute or _ADMIN_ALLOW_LIST_ATTRIBUTES[0])
    entries = [str(e) for e in (getattr(admin, attribute, None) or [])] if attribute else []
    if not entries:
        yield _error(
            "admin.no_ip_allow_list",
            name,
            f"the admin panel is enabled without an IP allow-list; set {name} to your "
            f"office or VPN networks, or set {env_var('admin', 'enabled')}=false",
        )
        return
    for entry in entries:
        try:
            everyone = (
                entry.strip() == "*" or ipaddress.ip_network(entry, strict=False).prefixlen == 0
            )
        except ValueError:
            continue  # not an address; the admin settings validate their own syntax
        if everyone:
            yield _error(
                "admin.no_ip_allow_list",
                name,
                f"{name} allows every address; list your office or VPN networks",
            )
            return


def rule_fake_payments(settings: Settings) -> Iterator[Finding]:
    # The fake gateway confirms every checkout: paid tiers and credits for free.
    if getattr(_section(settings, "payments"), "backend", None) == "fake":
        yield _error(
            "payments.fake",
            env_var("payments", "backend"),
            f"{env_var('payments', 'backend')}=fake grants paid tiers and credits without "
            "payment; set it to stripe",
        )


def rule_fake_llm(settings: Settings) -> Iterator[Finding]:
    if getattr(_section(settings, "llm"), "backend", None) == "fake":
        yield _warning(
            "llm.fake",
            env_var("llm", "backend"),
            f"{env_var('llm', 'backend')}=fake answers with scripted text; set it to openai",
        )


RULES: tuple[Rule, ...] = (
    rule_secret_key_missing,
    rule_secret_key_short,
    rule_secret_key_predictable,
    rule_debug,
    rule_cookie_secure,
    rule_session_idle_timeout,
    rule_session_absolute_lifetime,
    rule_session_store,
    rule_token_lifetimes,
    rule_trusted_origins,
    rule_frontend_url,
    rule_oauth_fake_provider,
    rule_oauth_urls,
    rule_database_backend,
    rule_database_url,
    rule_database_auto_create,
    rule_weak_hashing_allowed,
    rule_argon2_parameters,
    rule_redis_url_missing,
    rule_redis_password,
    rule_redis_tls,
    rule_rate_limit_store,
    rule_rate_limits_disabled,
    rule_trusted_proxies,
    rule_celery_broker_missing,
    rule_amqp_broker,
    rule_email_backend,
    rule_smtp_tls,
    rule_admin_ip_allow_list,
    rule_fake_payments,
    rule_fake_llm,
    rule_docs_enabled,
)


def as_production(settings: Settings) -> Settings:
    """The same settings with `env=production`, so values that default by profile (the
    cookie's Secure flag) resolve as they would in production."""
    if settings.is_production:
        return settings
    return settings.model_copy(update={"env": "production"})


def check_settings(settings: Settings, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Every finding for `settings` evaluated as production, errors first, in rule order."""
    production = as_production(settings)
    findings = [finding for rule in rules for finding in rule(production)]
    return sorted(findings, key=lambda f: f.severity != "error")


def startup_check(settings: Settings) -> None:
    """What `start_runtime` runs in production: log every finding, raise on any error.

    Errors are logged one event each (besides the exception) so log pipelines that index
    events, not tracebacks, still show why the process refused to start.
    """
    findings = check_settings(settings)
    for finding in findings:
        method = _log.error if finding.severity == "error" else _log.warning
        method(
            "security_check_error" if finding.severity == "error" else "security_check_warning",
            rule=finding.rule,
            setting=finding.setting,
            detail=finding.message,
        )
    if any(f.severity == "error" for f in findings):
        raise SecurityCheckFailed(findings)
