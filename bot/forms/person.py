"""The recipient as a person: a name and a mainland mobile number.

Usage::

    parse_name("  张  三 ")              # "张 三"            or raises Invalid
    parse_phone("+86 138-0013-8000")     # "+8613800138000"  or raises Invalid
    check_phone("+8613800138000")        # a stored number again (no parse if this process gave it)
    mask_phone("+8613800138000")         # "138****8000"   (logs, lists)
    show_phone("+8613800138000")         # "138 0013 8000" (the confirm step)

Phones are stored as E.164 so the SMS clients and the database agree on one
spelling; `phonenumbers` decides validity, so new number ranges need only a
library upgrade.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import PhoneNumberType

from bot.codes import Code
from bot.forms.base import Given, Invalid
from bot.forms.safety import has_markup, refuse_hidden
from bot.words import normalize

NAME_MAX = 20

_PHONE_PUNCTUATION = re.compile(r"[\s\-().·/]")
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_GIVEN = Given()  # the numbers parse_phone gave in this process


def parse_name(text: str) -> str:
    """A recipient's name as a courier would print it: 1-20 characters, at least one letter."""
    name = normalize(text)
    if not name:
        raise Invalid(Code.NAME_EMPTY)
    if len(name) > NAME_MAX:
        raise Invalid(Code.NAME_TOO_LONG, text=name, length=len(name), limit=NAME_MAX)
    refuse_hidden(name, "姓名")  # what the courier reads must be what the recipient typed
    if has_markup(name):
        raise Invalid(Code.NAME_INVALID, text=name)
    # Digits-only, emoji-only and punctuation-only all lack a letter (Chinese characters are letters).
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        raise Invalid(Code.NAME_INVALID, text=name)
    return name


def parse_phone(text: str) -> str:
    """A mainland China mobile number in E.164 (+8613800138000)."""
    shown = normalize(text)
    if not shown:
        raise Invalid(Code.PHONE_EMPTY)
    digits = _PHONE_PUNCTUATION.sub("", shown)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = "+" + digits  # 86 written without + or 00
    if not re.fullmatch(r"\+?\d{5,15}", digits):
        raise Invalid(Code.PHONE_INVALID, text=shown)
    try:
        number = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:
        raise Invalid(Code.PHONE_INVALID, text=shown) from None
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise Invalid(Code.PHONE_INVALID, text=shown)
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise Invalid(Code.PHONE_NOT_MOBILE, text=shown)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _GIVEN.add(e164, e164)


def check_phone(value: str) -> str:
    """A stored number, still a mainland mobile: parsed again unless this process's
    `parse_phone` gave it (phonenumbers' rules do not change while it runs)."""
    return value if isinstance(value, str) and value in _GIVEN else parse_phone(value)


def mask_phone(e164: str) -> str:
    """Hide the middle four digits, the way Chinese apps show a number: 138****8000."""
    national = _national(e164)
    if len(national) < 8:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"


def show_phone(e164: str) -> str:
    """Group a mobile number 3-4-4, as people read it aloud: 138 0013 8000."""
    national = _national(e164)
    if len(national) != 11:
        return national
    return f"{national[:3]} {national[3:7]} {national[7:]}"


def _national(e164: str) -> str:
    return e164.removeprefix("+86") if e164.startswith("+86") else e164.lstrip("+")
