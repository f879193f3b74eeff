"""OpenAPI links: how one operation's answer feeds the next, where that is true.

They document the flows for client authors and let a stateful fuzzer chain real
requests (a session it listed, a refresh token it was given, an account it created).
Keyed by the source operation's id and status; targets are operation ids. A request body
written as an object is the target's body with each `$request`/`$response` expression in
it replaced by its value.
"""

from __future__ import annotations

import copy
from typing import Any

_REFRESH_TOKEN = {"refresh_token": "$response.body#/refresh_token"}
_SAME_CREDENTIALS = {"email": "$request.body#/email", "password": "$request.body#/password"}

_TOKEN_PAIR_LINKS = {
    "RefreshTheSignIn": {
        "operationId": "refresh_token",
        "requestBody": _REFRESH_TOKEN,
        "description": "Trade the refresh token for a new pair (it is dead afterwards).",
    },
    "EndTheSignIn": {
        "operationId": "revoke_token",
        "requestBody": _REFRESH_TOKEN,
        "description": "Revoke the refresh token, ending this sign-in.",
    },
}

LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("list_sessions", "200"): {
        "RevokeSession": {
            "operationId": "revoke_session",
            "parameters": {"path.session_id": "$response.body#/items/0/id"},
            "description": "End a listed session (each item is one of the caller's).",
        },
    },
    ("issue_token", "200"): _TOKEN_PAIR_LINKS,
    ("refresh_token", "200"): _TOKEN_PAIR_LINKS,
    ("register", "201"): {
        "SignInWithACookie": {
            "operationId": "login",
            "requestBody": _SAME_CREDENTIALS,
            "description": "Sign in to the new account (browser session).",
        },
        "SignInWithTokens": {
            "operationId": "issue_token",
            "requestBody": _SAME_CREDENTIALS,
            "description": "Sign in to the new account (bearer tokens).",
        },
    },
}


def add_links(document: dict[str, Any]) -> None:
    """Put `LINKS` on the answers they start from; a source or target missing from the
    document is an error (a renamed handler must not drop a link silently)."""
    operations = {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
        if "operationId" in operation
    }
    for (source, status), links in LINKS.items():
        for link in links.values():
            if link["operationId"] not in operations:
                raise LookupError(f"link target {link['operationId']!r} is not an operation")
        answer = operations[source]["responses"][status]
        answer["links"] = copy.deepcopy(links)
