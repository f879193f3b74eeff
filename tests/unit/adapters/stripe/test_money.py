"""Stripe's minor units and Portico's micro-units."""

from __future__ import annotations

import pytest

from adapters.stripe.money import decimals, micros_per_minor_unit, to_micros, to_minor


@pytest.mark.parametrize(
    ("currency", "places", "factor"),
    [
        ("usd", 2, 10_000),
        ("EUR", 2, 10_000),
        ("jpy", 0, 1_000_000),
        ("krw", 0, 1_000_000),
        ("ugx", 0, 1_000_000),
        ("bhd", 3, 1_000),
        ("kwd", 3, 1_000),
        ("isk", 2, 10_000),  # charged in whole krona, written with two decimals
        ("huf", 2, 10_000),
    ],
)
def test_the_minor_unit_of_each_kind_of_currency(currency: str, places: int, factor: int) -> None:
    assert decimals(currency) == places
    assert micros_per_minor_unit(currency) == factor


def test_amounts_convert_exactly_both_ways() -> None:
    assert to_micros(999, "usd") == 9_990_000  # $9.99
    assert to_micros(500, "jpy") == 500_000_000  # 500 yen
    assert to_micros(5_125, "kwd") == 5_125_000  # 5.125 dinar
    assert to_micros(0, "usd") == 0
    assert to_minor(9_990_000, "usd") == 999
    assert to_minor(500_000_000, "jpy") == 500
    assert to_minor(5_125_000, "bhd") == 5_125


@pytest.mark.parametrize(
    ("micros", "currency"), [(1_000, "usd"), (9_995_000, "usd"), (500_500_000, "jpy"), (1, "bhd")]
)
def test_an_amount_that_is_not_whole_minor_units_is_refused(micros: int, currency: str) -> None:
    with pytest.raises(ValueError, match="not a whole number"):
        to_minor(micros, currency)


@pytest.mark.parametrize("amount", [True, 1.5, "100", None])
def test_only_integers_are_amounts(amount: object) -> None:
    with pytest.raises(TypeError):
        to_micros(amount, "usd")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_minor(amount, "usd")  # type: ignore[arg-type]
