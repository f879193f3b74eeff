"""The scenarios: what wrk sends to Portico and to the ceiling it is compared with.

| scenario | Portico | its ceiling |
|---|---|---|
| `GET /health` | `/health`, no cookie | health ceiling `/health` (same body and type) |
| `GET /health`, same headers | `/health` | health ceiling `/health-with-headers` (+ headers) |
| `GET /api/v1/auth/csrf` | anonymous, rate limited | health ceiling's bare `/api/v1/auth/csrf` |
| cookie `GET /api/v1/users/me` | session cookie | minimal-I/O ceiling, same cookie |
| bearer `GET /api/v1/users/me` | access token | minimal-I/O ceiling, session cookie |
| cookie `GET /api/v1/me/entitlements` | session cookie | minimal-I/O ceiling's `/users/me` |

(`+ headers`: the security headers and a fresh `X-Request-ID`, which every Portico answer
carries.) Then "reads during a login stream": cookie `/users/me` on Portico while a second wrk
logs a different account in over and over (`POST /api/v1/auth/login`, argon2id each
time), compared with the idle cookie reads of the same round.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.accounts import CSRF_HEADER
from bench.ceilings.health import HEADERS_PATH
from bench.stack import Fixtures
from bench.wrk import Load

PORTICO = "portico"
HEALTH_CEILING = "health ceiling"
IO_CEILING = "minimal-I/O ceiling"
COOKIE_READS = "cookie /users/me"
# In run order: the cookie reads come last, next to the login stream they anchor.
TITLES = (
    "/health",
    "/health, same headers",
    "anonymous /auth/csrf",
    "bearer /users/me",
    "cookie /me/entitlements",
    COOKIE_READS,
)
# Each scenario on both targets, then the reads during the login stream.
RUNS_PER_ROUND = 2 * len(TITLES) + 1


@dataclass(frozen=True)
class Scenario:
    title: str
    ceiling_name: str
    ceiling: Load
    portico: Load


def build_scenarios(fx: Fixtures, access_token: str) -> list[Scenario]:
    """The scenarios of `TITLES`, in that order."""
    cookie = (("Cookie", fx.session_cookie.header()),)
    bearer = (("Authorization", f"Bearer {access_token}"),)
    me = "/api/v1/users/me"
    csrf = "/api/v1/auth/csrf"
    return [
        Scenario(
            TITLES[0],
            HEALTH_CEILING,
            Load(f"{fx.health_ceiling_url}/health"),
            Load(f"{fx.portico_url}/health"),
        ),
        Scenario(
            TITLES[1],
            HEALTH_CEILING,
            Load(f"{fx.health_ceiling_url}{HEADERS_PATH}"),
            Load(f"{fx.portico_url}/health"),
        ),
        Scenario(
            TITLES[2],
            HEALTH_CEILING,
            Load(f"{fx.health_ceiling_url}{csrf}"),
            Load(f"{fx.portico_url}{csrf}"),
        ),
        Scenario(
            TITLES[3],
            IO_CEILING,
            Load(f"{fx.io_ceiling_url}{me}", cookie),
            Load(f"{fx.portico_url}{me}", bearer),
        ),
        Scenario(
            TITLES[4],
            IO_CEILING,
            Load(f"{fx.io_ceiling_url}{me}", cookie),
            Load(f"{fx.portico_url}/api/v1/me/entitlements", cookie),
        ),
        Scenario(
            COOKIE_READS,
            IO_CEILING,
            Load(f"{fx.io_ceiling_url}{me}", cookie),
            Load(f"{fx.portico_url}{me}", cookie),
        ),
    ]


def login_load(fx: Fixtures) -> Load:
    """Real logins of the login account, with a pre-session CSRF token and its cookie."""
    pre = fx.login_pre_session
    return Load(
        f"{fx.portico_url}/api/v1/auth/login",
        (
            ("Content-Type", "application/json"),
            (CSRF_HEADER, pre.token),
            ("Cookie", pre.cookie.header()),
        ),
        method="POST",
        body=fx.login_account.credentials_json(),
    )


def reads_load(fx: Fixtures) -> Load:
    return Load(f"{fx.portico_url}/api/v1/users/me", (("Cookie", fx.session_cookie.header()),))
