"""Decimal to minor units and back, per currency exponent."""
from __future__ import annotations

from decimal import Decimal

import pytest

from payments.money import currency_exponent, from_minor_units, to_minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("12.34"), "USD", 1234),
        (Decimal("12.3"), "eur", 1230),
        (Decimal("12.340"), "USD", 1234),
        (Decimal("1000"), "JPY", 1000),
        (Decimal("5000"), "KRW", 5000),
        (Decimal("1.234"), "KWD", 1234),
        (Decimal("0.5"), "BHD", 500),
        (Decimal("0"), "USD", 0),
        (7, "USD", 700),
    ],
)
def test_to_minor_units(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [
        (1234, "USD", "12.34"),
        (5, "USD", "0.05"),
        (1000, "JPY", "1000"),
        (1234, "OMR", "1.234"),
    ],
)
def test_from_minor_units(minor, currency, amount):
    result = from_minor_units(minor, currency)

    assert result == Decimal(amount)
    assert str(result) == amount


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD", "CLF"])
def test_round_trip(currency):
    for minor in (0, 1, 99, 12345, 99_999_999):
        assert to_minor_units(from_minor_units(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (Decimal("12.345"), "USD"),
        (Decimal("100.5"), "JPY"),
        (Decimal("1.2345"), "KWD"),
        (Decimal("NaN"), "USD"),
        (Decimal("Infinity"), "USD"),
    ],
)
def test_to_minor_units_rejects_inexact(amount, currency):
    with pytest.raises(ValueError):
        to_minor_units(amount, currency)


@pytest.mark.parametrize("amount", [12.34, "12.34", True])
def test_to_minor_units_rejects_non_decimal(amount):
    with pytest.raises(TypeError):
        to_minor_units(amount, "USD")


@pytest.mark.parametrize("currency", ["US", "USDT", "U$D", "", None])
def test_invalid_currency(currency):
    with pytest.raises(ValueError):
        currency_exponent(currency)


def test_exponents():
    assert currency_exponent("usd") == 2
    assert currency_exponent("JPY") == 0
    assert currency_exponent("KRW") == 0
    assert currency_exponent("BHD") == 3
    assert currency_exponent("KWD") == 3
    assert currency_exponent("OMR") == 3
    assert currency_exponent("CLF") == 4
