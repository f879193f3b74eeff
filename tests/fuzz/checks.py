"""Checks of ours, run by the fuzzer after each of its built-in checks.

- No password hash, hash field name or traceback in any answer.
- Every answer carries an `X-Request-ID`.
- Credentials we handed out and nothing has ended are honoured: an answer to a request
  that carries them is never a 401 (so the built-in "auth is never ignored" check, which
  compares against such answers, always had live credentials to compare with).
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any

from tests.fuzz.identities import Identities
from tests.unit.http.support import FORBIDDEN_IN_BODIES


def _credentials_sent(request: Any, session_cookie: str) -> set[str]:
    sent = set()
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        sent.add(authorization.removeprefix("Bearer ").strip())
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(request.headers.get("Cookie", ""))
    except CookieError:
        return sent
    if session_cookie in cookies:
        sent.add(cookies[session_cookie].value)
    return sent


def build_checks(identities: Identities) -> list[Any]:
    def no_secrets_in_answers(ctx: Any, response: Any, case: Any) -> None:
        for forbidden in FORBIDDEN_IN_BODIES:
            assert forbidden not in response.text, f"{forbidden!r} in the answer"

    def request_id_on_every_answer(ctx: Any, response: Any, case: Any) -> None:
        assert response.headers.get("x-request-id"), "no X-Request-ID"

    def live_credentials_are_honoured(ctx: Any, response: Any, case: Any) -> None:
        ours = _credentials_sent(response.request, identities.session_cookie) & identities.issued
        if ours and response.status_code == 401:
            raise AssertionError(f"live credentials refused: {response.text}")

    return [no_secrets_in_answers, request_id_on_every_answer, live_credentials_are_honoured]
