"""`portico create-superuser` and `portico users deactivate|reactivate|verify-email|
sessions-end`: operators' account changes, through `UserAdministration` (audited, the
user cache forgets the account). The command line acts as no user: audit entries carry
no actor.

A password never goes on a command line (it would sit in the shell history and in the
process list): `create-superuser` prompts for it twice, or reads one line from stdin
with `--password-stdin`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from entrypoints.bootstrap.settings import Settings
from entrypoints.cli.common import (
    EXIT_OK,
    add_json_flag,
    fail,
    positive_int,
    print_json,
    run_with_runtime,
    warn,
)


class _NoPassword(Exception):
    pass


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        # Only the line break goes: spaces are part of a passphrase.
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise _NoPassword("no password on stdin (one line expected)")
        return password
    try:
        password = getpass.getpass("Password: ")
        again = getpass.getpass("Password (again): ")
    except EOFError:
        raise _NoPassword("no password given (use --password-stdin to pipe one)") from None
    if password != again:
        raise _NoPassword("the two passwords differ")
    if not password:
        raise _NoPassword("no password given")
    return password


def _user_json(user: Any) -> dict[str, object]:
    return {
        "id": user.id,
        "email": str(user.email),
        "username": str(user.username),
        "is_superuser": user.is_superuser,
        "email_verified": user.email_verified,
        "active": user.is_active,
        "deactivated_at": user.deactivated_at,
    }


def _create_superuser(args: argparse.Namespace, settings: Settings) -> int:
    from core.identity.administration import UserAdministration

    try:
        password = _read_password(args.password_stdin)
    except _NoPassword as exc:
        return fail(str(exc))

    async def create(runtime: Any) -> int:
        user = await runtime.get(UserAdministration).create_superuser(
            args.email, password, username=args.username
        )
        if args.json:
            print_json(_user_json(user))
        else:
            print(f"created superuser {user.username} <{user.email}> (id {user.id})")
        return EXIT_OK

    return run_with_runtime(settings, create)


def _users(args: argparse.Namespace, settings: Settings) -> int:
    from core.identity.administration import UserAdministration
    from core.identity.service import AccountService

    async def act(runtime: Any) -> int:
        admin = runtime.get(UserAdministration)
        accounts = runtime.get(AccountService)  # deactivated accounts too
        if args.id is not None:
            user = await accounts.get(args.id)
        else:
            user = await accounts.get_by_email(args.email)
        assert user.id is not None
        result: dict[str, object]
        if args.action == "sessions-end":
            count = await admin.end_sessions(user.id, actor_id=None)
            result = {"id": user.id, "email": str(user.email), "sessions_ended": count}
            message = f"ended {count} session(s) and every token of {user.email}"
        elif args.action == "deactivate":
            user = await admin.deactivate(user.id, actor_id=None, reason=args.reason or "")
            result = _user_json(user)
            message = f"{user.email} is deactivated; its sessions and tokens are ended"
        elif args.action == "reactivate":
            user = await admin.reactivate(user.id, actor_id=None)
            result = _user_json(user)
            message = f"{user.email} is active again"
        else:
            user = await admin.verify_email(user.id, actor_id=None)
            result = _user_json(user)
            message = f"{user.email} is verified"
        if args.action in ("sessions-end", "deactivate") and settings.sessions.backend == "memory":
            warn(
                "sessions live in each server's own memory (PORTICO_SESSIONS__BACKEND=memory): "
                "a running server's browser sessions cannot be ended from here"
                + (
                    "; it refuses them anyway, the user being inactive"
                    if args.action == "deactivate"
                    else ""
                )
            )
        if args.json:
            print_json(result)
        else:
            print(message)
        return EXIT_OK

    return run_with_runtime(settings, act)


def _add_target(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", help="the account's email")
    which.add_argument("--id", type=positive_int, help="the account's id")
    add_json_flag(parser)


def add_account_commands(commands: Any) -> None:
    create = commands.add_parser(
        "create-superuser",
        help="create a verified superuser (prompts for the password twice)",
    )
    create.add_argument("--email", required=True)
    create.add_argument(
        "--username", help="default: the email's local part, made unique (ada, ada-2...)"
    )
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of stdin instead of prompting",
    )
    add_json_flag(create)
    create.set_defaults(handler=_create_superuser)

    users = commands.add_parser(
        "users", help="accounts: deactivate, reactivate, verify-email, sessions-end (audited)"
    )
    actions = users.add_subparsers(dest="action", required=True)
    deactivate = actions.add_parser(
        "deactivate", help="refuse every sign-in; end every session and token"
    )
    _add_target(deactivate)
    deactivate.add_argument("--reason", help="why (kept in the audit record)")
    _add_target(actions.add_parser("reactivate", help="let a deactivated account sign in"))
    _add_target(actions.add_parser("verify-email", help="mark the account's email verified"))
    _add_target(
        actions.add_parser("sessions-end", help="end every session and token of the account")
    )
    users.set_defaults(handler=_users)
