"""Stripe's minor units <-> Portico's micro-units.

Portico counts money in micro-units of the currency (1 USD = 1_000_000). Stripe counts
in the currency's minor unit as its API defines it, which is not always ISO 4217's:

| Stripe's exponent | currencies                                      | micro-units per minor unit |
| ----------------- | ----------------------------------------------- | -------------------------- |
| 0 (zero-decimal)  | bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd | 1_000_000                  |
|                   | vuv xaf xof xpf                                 |                            |
| 3                 | bhd jod kwd omr tnd                             | 1_000                      |
| 2 (every other)   | usd eur gbp ... and isk, huf, twd (see below)   | 10_000                     |

ISK, HUF and TWD are charged in whole units but Stripe's API still writes them with two
decimals (an amount of 100 is 1 krona), so they stay in the two-decimal row; UGX is in
Stripe's zero-decimal list. Conversion to micro-units is exact; conversion back refuses
an amount that is not a whole number of minor units rather than rounding money.
"""

from __future__ import annotations

MICROS_PER_UNIT = 1_000_000

ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
_MICROS_PER_MINOR = {0: MICROS_PER_UNIT, 2: MICROS_PER_UNIT // 100, 3: MICROS_PER_UNIT // 1000}


def decimals(currency: str) -> int:
    """How many decimals Stripe's API gives `currency` (0, 2 or 3)."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def micros_per_minor_unit(currency: str) -> int:
    """1_000_000 for zero-decimal currencies, 1_000 for three-decimal, else 10_000."""
    return _MICROS_PER_MINOR[decimals(currency)]


def to_micros(amount: int, currency: str) -> int:
    """Stripe's `amount` (minor units of `currency`) in micro-units: always exact."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("a Stripe amount is an integer of minor units")
    return amount * micros_per_minor_unit(currency)


def to_minor(amount_micros: int, currency: str) -> int:
    """Micro-units as Stripe's minor units; `ValueError` unless the conversion is exact
    (a price of 0.001 USD cannot be charged, and rounding money is not ours to do)."""
    if isinstance(amount_micros, bool) or not isinstance(amount_micros, int):
        raise TypeError("an amount of micro-units is an integer")
    factor = micros_per_minor_unit(currency)
    minor, remainder = divmod(amount_micros, factor)
    if remainder:
        raise ValueError(
            f"{amount_micros} micro-units of {currency.upper()} is not a whole number of "
            f"the minor unit ({factor} micro-units)"
        )
    return minor
