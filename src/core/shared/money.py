"""Money as every context keeps it: integers of micro-units (1 USD = 1_000_000) of a
currency named by its ISO 4217 code in lower case."""

from __future__ import annotations

from core.shared.errors import RuleViolationError

MICROS_PER_UNIT = 1_000_000


def check_currency(value: str) -> str:
    """An ISO 4217 code in lower case (`usd`), as gateways spell it."""
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise RuleViolationError("A currency is a three-letter ISO 4217 code.", field="currency")
    return value.lower()


def format_money(amount: int, currency: str) -> str:
    """Micro-units as people read them: `5.00 USD`."""
    return f"{amount / MICROS_PER_UNIT:,.2f} {currency.upper()}"
