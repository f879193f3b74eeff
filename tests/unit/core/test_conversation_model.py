"""Conversation model values: what a model price accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.conversations.model import ModelPrice
from core.shared.errors import RuleViolationError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_price_keeps_its_currency_in_lower_case() -> None:
    assert ModelPrice("gpt-4o", 1, 2, T0, currency="EUR").currency == "eur"
    assert ModelPrice("gpt-4o", 1, 2, T0).currency == "usd"


@pytest.mark.parametrize("currency", ["us", "usdt", "u$d", "", "12a"])
def test_a_price_has_a_three_letter_currency(currency: str) -> None:
    with pytest.raises(RuleViolationError):
        ModelPrice("gpt-4o", 1, 2, T0, currency=currency)
