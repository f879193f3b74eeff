"""Audit errors."""

from __future__ import annotations


class UnsafeAuditEntryError(ValueError):
    """An audit entry would hold something that looks like a secret, or is malformed.

    Not a `DomainError`: no user input reaches audit details, so this is always a bug in
    the code building the entry. It fails loudly (a 500, a failing test) instead of
    writing a password, token, session id or hash into the append-only trail.
    """
