"""Remove customers' personal and payment data from text before it becomes training data.

A fine-tuned adapter can repeat what it was trained on, so every text that enters a training
snapshot passes through :func:`redact` first. Each kind of data is replaced by a placeholder
(``[EMAIL]``, ``[IBAN]``, ``[CARD]``, ``[ACCOUNT]``, ``[PHONE]``) so the model still learns where
such a value goes in an answer, never the value itself.

Numbers are everywhere in customer service (prices, dates, times, order and tracking numbers,
postcodes), so the number patterns are narrow and checked where a check exists: card numbers must
pass the Luhn check, IBANs the ISO 13616 mod-97 check (or follow the word "IBAN"), account numbers
must follow a word such as "account" or "acct no.", and phone numbers must look like phone numbers
(a ``+`` country code, an area code in brackets, a leading trunk ``0``, or the North American
3-3-4 layout). The detectors run in that order on the text the previous ones left, and placeholders
hold no digits, so a value is replaced once, by the most specific kind.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable

EMAIL = "[EMAIL]"
IBAN = "[IBAN]"
CARD = "[CARD]"
ACCOUNT = "[ACCOUNT]"
PHONE = "[PHONE]"

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)

# Country code, check digits, then 11 to 30 letters or digits, printed in groups of four or not.
_IBAN = re.compile(r"\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,4})?\b", re.IGNORECASE)
_IBAN_KEYWORD = re.compile(r"\biban\b\W{0,3}$", re.IGNORECASE)

# 13 to 19 digits, optionally grouped by single spaces or dashes; not part of a longer token.
_CARD = re.compile(r"(?<![\w+\-])[2-6](?:[ \-]?\d){12,18}(?![\w\-])")

_ACCOUNT = re.compile(
    r"\b(?:bank\s+)?(?:account|acct|acc|a/c|konto(?:nummer)?|kto)\.?"
    r"(?:\s*(?:number|num|no|nr|#)\b\.?)?(?:\s+is)?\s*[:#=]?\s*"
    r"(?P<number>\d(?:[ \-]?\d){5,19})(?!\d)",
    re.IGNORECASE,
)

_PHONES = (
    # International: +49 89 1234 5678, +49 (0)89 1234-5678, +1 (555) 123-4567, +4915112345678.
    re.compile(r"(?<![\w+])\+\d{1,4}(?:[ .\-/]?\(\d{1,5}\))?(?:[ .\-/]?\d+){1,8}(?!\d)"),
    # Area code in brackets: (555) 123-4567, (089) 1234 5678.
    re.compile(r"(?<![\w)])\(\d{2,5}\)[ .\-]?\d{2,4}(?:[ .\-]?\d{2,5}){1,3}(?!\d)"),
    # National numbers with a trunk zero: 0176 12345678, 089 1234 5678, 0176/1234567. No dots
    # or colons, so dates (01.02.2026) and times (08:00) never match.
    re.compile(r"(?<![\w.,+/\-])0\d{2,5}(?:[ /\-]?\d{2,}){1,4}(?!\d)"),
    # North American layout: 555-123-4567, 555.123.4567, 1-800-555-0199.
    re.compile(r"(?<![\w.,+/\-])(?:1[ .\-])?\d{3}[ .\-]\d{3}[ .\-]\d{4}(?![\w]|[.,]\d)"),
)
_PHONE_DIGITS = (7, 15)  # E.164 allows at most 15 digits; fewer than 7 is not a reachable number


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every payment card number satisfies (and about 9 in 10 other numbers fail)."""
    digits = [int(ch) for ch in _digits(number)]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return bool(digits) and total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, and the result mod 97 is 1."""
    compact = re.sub(r"\s", "", iban).upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _replace_email(match: re.Match[str]) -> str | None:
    return EMAIL


def _replace_iban(match: re.Match[str]) -> str | None:
    # The pattern may have taken a following short word as the last group ("... 0130 00 and"):
    # drop trailing groups until the checksum holds.
    groups = match.group().split(" ")
    for end in range(len(groups), 0, -1):
        candidate = " ".join(groups[:end])
        if iban_valid(candidate):
            rest = " ".join(groups[end:])
            return IBAN + (" " + rest if rest else "")
    # A mistyped IBAN fails the checksum but is still an IBAN when the customer says so.
    if _IBAN_KEYWORD.search(match.string[: match.start()]):
        return IBAN
    return None


def _replace_card(match: re.Match[str]) -> str | None:
    return CARD if luhn_valid(match.group()) else None


def _replace_account(match: re.Match[str]) -> str | None:
    start = match.start("number") - match.start()
    return match.group()[:start] + ACCOUNT


def _replace_phone(match: re.Match[str]) -> str | None:
    low, high = _PHONE_DIGITS
    return PHONE if low <= len(_digits(match.group())) <= high else None


_DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str | None]], ...] = (
    (EMAIL, _EMAIL, _replace_email),
    (IBAN, _IBAN, _replace_iban),
    (CARD, _CARD, _replace_card),
    (ACCOUNT, _ACCOUNT, _replace_account),
    *((PHONE, pattern, _replace_phone) for pattern in _PHONES),
)


def redact_counted(text: str) -> tuple[str, Counter[str]]:
    """``text`` with personal and payment data replaced, and how many values of each kind were replaced."""
    counts: Counter[str] = Counter()
    for kind, pattern, replace in _DETECTORS:

        def substitute(match: re.Match[str]) -> str:
            replacement = replace(match)
            if replacement is None:
                return match.group()
            counts[kind] += 1
            return replacement

        text = pattern.sub(substitute, text)
    return text, counts


def redact(text: str) -> str:
    """``text`` with e-mail addresses, IBANs, card, account and phone numbers replaced by placeholders."""
    return redact_counted(text)[0]
