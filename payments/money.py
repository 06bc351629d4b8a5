"""Conversion between Decimal amounts and the integer minor units that payment providers use.

The number of minor-unit digits (the currency exponent) comes from ISO 4217.
Currencies not listed below use 2, which is right for most of them.
"""
from __future__ import annotations

from decimal import Decimal

# ISO 4217 currencies whose exponent is not 2.
_ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
        "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)
_THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
_FOUR_DECIMAL_CURRENCIES = frozenset({"CLF", "UYW"})


def normalize_currency(currency: str) -> str:
    """Return `currency` as an upper-case ISO 4217 code, or raise ValueError if it is not three letters."""
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise ValueError(f"currency must be a three-letter ISO 4217 code, got {currency!r}")
    return currency.upper()


def currency_exponent(currency: str) -> int:
    """Return the number of minor-unit digits of `currency` (2 for USD, 0 for JPY, 3 for KWD)."""
    code = normalize_currency(currency)
    if code in _ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in _THREE_DECIMAL_CURRENCIES:
        return 3
    if code in _FOUR_DECIMAL_CURRENCIES:
        return 4
    return 2


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Convert `amount` in major units to an integer count of minor units.

    Raises ValueError when the amount has more fractional digits than the
    currency allows (12.345 USD), because rounding a charge silently would
    charge a different amount than the order shows. Floats raise TypeError.
    """
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise TypeError(f"amount must be a Decimal or an int, got {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"amount must be a finite number, got {amount!r}")

    exponent = currency_exponent(currency)
    scaled = value.scaleb(exponent)
    minor = scaled.to_integral_value()
    if minor != scaled:
        raise ValueError(f"{amount} {currency} has more than {exponent} fractional digits")
    return int(minor)


def from_minor_units(amount_minor: int, currency: str) -> Decimal:
    """Convert an integer count of minor units to a Decimal with the currency's number of places."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"amount_minor must be an int, got {type(amount_minor).__name__}")
    exponent = currency_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))
