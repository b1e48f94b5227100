"""Money is integer cents in one ISO 4217 currency per order; no floats anywhere."""

from __future__ import annotations

import re

from domain.errors import InvalidCurrency, InvalidUnitPrice, UnitPriceTooPrecise

# Active ISO 4217 codes whose minor unit is the cent (two decimals) or less.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB
    EUR FJD GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR ISK JMD
    JPY KES KGS KHR KMF KPW KRW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
    SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV
    WST XAF XCD XOF XPF YER ZAR ZMW ZWL
    """.split()
)

_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def check_currency(code: str) -> None:
    if code not in CURRENCIES:
        raise InvalidCurrency(
            f"“{code[:10]}” is not a currency code we know: use a three-letter "
            "ISO 4217 code in capitals, such as EUR, USD or GBP."
        )


def parse_amount(text: str) -> int:
    """Read a decimal string such as "3.50" as cents; the sign and size are the caller's rules."""
    text = text.strip()
    match = _AMOUNT.fullmatch(text) if len(text) <= 32 else None
    if match is None:
        raise InvalidUnitPrice(
            "Enter the unit price as a positive amount such as 3.50 "
            "(digits, an optional point and up to two decimals)."
        )
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > 2:
        raise UnitPriceTooPrecise(
            f"“{text}” has {len(fraction)} decimals; a price has at most 2, such as 3.50."
        )
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


def format_amount(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{fraction:02d}"
