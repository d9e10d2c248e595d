"""Remove customers' personal and payment data from text: before it becomes training data, and
before a customer message is stored when ``HELPMATE_REDACT_ON_STORE`` is set.

A fine-tuned adapter can repeat what it was trained on, so every text that enters a training
snapshot passes through :func:`redact` first; a stored message can be read by every operator and
outlives the conversation, so a deployment may choose to keep none of it. Each kind of data is
replaced by a placeholder (``[EMAIL]``, ``[IBAN]``, ``[CARD]``, ``[ACCOUNT]``, ``[NATIONAL_ID]``,
``[DOB]``, ``[IP]``, ``[PHONE]``) so the model still learns where such a value goes in an answer,
and an operator still reads that the customer gave one, never the value itself. It lives with the
conversations (not in ``finetune``) because storing messages needs it and ``assistant`` never
imports ``finetune``.

Numbers are everywhere in customer service (prices, dates, times, order and tracking numbers,
postcodes, version numbers), so the number patterns are narrow and checked where a check exists,
since a placeholder where the order number or the price was makes the message useless:

* card numbers must pass the Luhn check, IBANs the ISO 13616 mod-97 check (or follow the word
  "IBAN"), account numbers must follow a word such as "account" or "acct no.";
* national ids are a US social security number in its printed layout (123-45-6789, with the area,
  group and serial numbers the SSA issues: never 000, 666 or 9xx, 00 or 0000), a UK National
  Insurance number in its letter-digit layout (QQ 12 34 56 C, upper case, valid prefixes), or any
  id of 6 to 20 letters and digits (at least 4 digits) after a word that names it ("SSN",
  "passport number", "national ID", "tax ID", "Personalausweis"...); dates (4-2-2, 2-2-4) and
  North American phone numbers (3-3-4) never have the 3-2-4 layout;
* a date is a date of birth only right after "date of birth", "DOB", "born (on)", "birthday" or
  "birth date"; every other date (an order or delivery date) stays;
* IPv4 addresses are four numbers 0-255 without leading zeros, not part of a longer dotted run;
  a four-part version number looks exactly like one, so a dotted quad right after "version",
  "v", "build", "release", "firmware" or "update" is taken as a version and left, and any other
  is replaced (hiding a version number costs less than keeping an address). IPv6 addresses must
  parse as one (Python's ``ipaddress``) and carry at least two groups and four hex digits, so
  times (12:30:45), MAC addresses and a stray "::" stay;
* phone numbers must look like phone numbers (a ``+`` country code, an area code in brackets, a
  leading trunk ``0``, or the North American 3-3-4 layout).

Obfuscated e-mail addresses are replaced too: with bracketed separators ("jane[at]example[.]com",
"jane (at) example (dot) com") and spelled out ("jane dot doe at example dot com"). Spelled out,
"at" is also an ordinary word, so that form needs a spelled-out "dot" in the domain, a common
top-level domain at the end, and a first word that is not a pronoun or verb: "jane at example.com"
stays, because "I bought it at example.com" reads the same.

The detectors run in that order on the text the previous ones left, and placeholders hold no
digits, so a value is replaced once, by the most specific kind.
"""
from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Any, Callable

EMAIL = "[EMAIL]"
IBAN = "[IBAN]"
CARD = "[CARD]"
ACCOUNT = "[ACCOUNT]"
PHONE = "[PHONE]"
NATIONAL_ID = "[NATIONAL_ID]"
DOB = "[DOB]"
IP = "[IP]"

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

# Obfuscated e-mail addresses: separators in brackets, or spelled out.
_AT = r"(?P<at>\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*|\s+at\s+|\s+@\s*|\s*@\s+)"
_DOT = r"(?:\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*|\s+dot\s+|\.)"
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.%+@-])(?P<local>[\w%+-]+(?:{_DOT}[\w%+-]+){{0,5}}){_AT}"
    rf"(?P<domain>[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?(?:{_DOT}[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?){{0,4}})"
    rf"(?P<last>{_DOT})(?P<tld>[a-z]{{2,24}})(?![\w-]|\.\w)",
    re.IGNORECASE,
)
_SPOKEN_DOT = re.compile(r"\s+dot\s+|[\[({<]", re.IGNORECASE)
_SPOKEN_TLDS = frozenset(
    "com net org edu gov info biz io co app dev me eu de at ch uk fr it es nl be dk se no fi pl cz ie pt us ca au nz".split())
# Words that come before "at" in ordinary sentences ("I bought it at shop dot com"), never a mailbox.
_NOT_A_MAILBOX = frozenset(
    "it that this them one me us you him her all everything something anything online there here look looked "
    "bought ordered purchased shopped found saw seen available sold listed cheaper registered signed up in on "
    "is was are were be been am and or but only also even just".split())

# National ids: the US SSN layout, the UK NINO layout, and any id after a word that names one.
_SSN = re.compile(r"(?<![\w\-/.#+])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-/]|[.,]\d)")
_NINO = re.compile(r"(?<![\w\-])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
                   r"(?: ?\d{2}){3} ?[A-D](?![\w\-])")
_ID_AFTER_KEYWORD = re.compile(
    r"(?:\b(?i:ssn|social\s+security(?:\s+(?:number|no))?|national\s+(?:insurance|id(?:entity)?)(?:\s+(?:card|number|no))?"
    r"|ni\s+(?:number|no)|passport(?:\s+(?:number|no))?|tax\s+(?:id|identification)(?:\s+(?:number|no))?"
    r"|steuer-?id(?:entifikationsnummer)?|personalausweis(?:nummer)?|(?:id|identity)\s+card(?:\s+(?:number|no))?"
    r"|driver'?s\s+licen[cs]e(?:\s+(?:number|no))?)|\bTIN)\b"
    r"(?i:\.?(?:\s*(?:[:#=]|is|was))*)\s*"
    r"(?P<number>[A-Za-z]{0,3}[ \-]?\d[\dA-Za-z]*(?:[ \-]\d[\dA-Za-z]*)*(?:[ \-][A-Da-d](?!\w))?)(?![\w\-])"
)

# A date right after a word that says it is a date of birth.
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?" \
         r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_DOB = re.compile(
    r"\b(?:date\s+of\s+birth|birth\s*date|d\.?o\.?b\b\.?|born(?:\s+on)?|birthday|geburtsdatum|geboren(?:\s+am)?)"
    r"(?:\s*(?:[:=\-–]|is|was|on))*\s*"
    rf"(?P<date>\d{{4}}[./\-]\d{{1,2}}[./\-]\d{{1,2}}|\d{{1,2}}[./\-]\d{{1,2}}(?:[./\-](?:\d{{4}}|\d{{2}}))?"
    rf"|{_DAY}(?:\s+of)?\s+{_MONTH}(?:,?\s+(?:19|20)\d{{2}})?|{_MONTH}\s+{_DAY}(?:,?\s+(?:19|20)\d{{2}})?)(?![\w/.\-]\d|\d)",
    re.IGNORECASE,
)

_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                   r"(?![\w]|\.\d)")
_VERSION_BEFORE = re.compile(r"\b(?:version|ver|v|build|release|firmware|update)\.?\s*:?\s*$", re.IGNORECASE)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{0,4})(?![\w:]|\.\d)",
                   re.IGNORECASE)

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


def _replace_obfuscated_email(match: re.Match[str]) -> str | None:
    spoken_at = not re.search(r"[\[({<@]", match.group("at"))
    if spoken_at:
        dots = match.group("domain") + match.group("last")
        if (not _SPOKEN_DOT.search(dots) or match.group("tld").lower() not in _SPOKEN_TLDS
                or match.group("local").lower() in _NOT_A_MAILBOX):
            return None
    return EMAIL


def _replace_national_id(match: re.Match[str]) -> str | None:
    return NATIONAL_ID


def _replace_id_after_keyword(match: re.Match[str]) -> str | None:
    number = match.group("number")
    alnum = [ch for ch in number if ch.isalnum()]
    if not 6 <= len(alnum) <= 20 or sum(ch.isdigit() for ch in alnum) < 4:
        return None
    return match.group()[:match.start("number") - match.start()] + NATIONAL_ID


def _replace_dob(match: re.Match[str]) -> str | None:
    return match.group()[:match.start("date") - match.start()] + DOB


def _replace_ipv4(match: re.Match[str]) -> str | None:
    return None if _VERSION_BEFORE.search(match.string[max(0, match.start() - 20):match.start()]) else IP


def _replace_ipv6(match: re.Match[str]) -> str | None:
    groups = [group for group in match.group().split(":") if group]
    if len(groups) < 2 or sum(len(group) for group in groups) < 4:
        return None
    try:
        ipaddress.IPv6Address(match.group())
    except ValueError:
        return None
    return IP


def _replace_phone(match: re.Match[str]) -> str | None:
    low, high = _PHONE_DIGITS
    return PHONE if low <= len(_digits(match.group())) <= high else None


_DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str | None]], ...] = (
    (EMAIL, _EMAIL, _replace_email),
    (EMAIL, _OBFUSCATED_EMAIL, _replace_obfuscated_email),
    (IBAN, _IBAN, _replace_iban),
    (CARD, _CARD, _replace_card),
    (ACCOUNT, _ACCOUNT, _replace_account),
    (NATIONAL_ID, _ID_AFTER_KEYWORD, _replace_id_after_keyword),
    (NATIONAL_ID, _SSN, _replace_national_id),
    (NATIONAL_ID, _NINO, _replace_national_id),
    (DOB, _DOB, _replace_dob),
    (IP, _IPV6, _replace_ipv6),
    (IP, _IPV4, _replace_ipv4),
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
    """``text`` with e-mail addresses, IBANs, card, account, national id and phone numbers, dates of
    birth and IP addresses replaced by placeholders."""
    return redact_counted(text)[0]


def redact_values(value: Any) -> Any:
    """``value`` with every string in it redacted, through dicts and lists (an agent's trace quotes
    the customer's words in tool arguments and the rewritten question)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_values(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_values(inner) for inner in value]
    return value
