"""Redaction of personal and payment data: realistic values are replaced, the numbers of ordinary
customer service (prices, dates, times, order numbers, postcodes) are left alone."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from assistant.conversations.redaction import iban_valid, luhn_valid, redact, redact_counted
from tests.conftest import REPO

DEMO = REPO / "demo"


@pytest.mark.parametrize("text, expected", [
    ("Please write to anna.mueller@example.com.", "Please write to [EMAIL]."),
    ("My e-mail is J.Smith+orders@mail.example.co.uk, thanks", "My e-mail is [EMAIL], thanks"),
    ("Contact: support@nimbusgear.example", "Contact: [EMAIL]"),
    ("(reachable at lena_k-1990@posteo.de)", "(reachable at [EMAIL])"),
])
def test_email_addresses(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Call me on +49 89 1234 5678 tomorrow.", "Call me on [PHONE] tomorrow."),
    ("Hotline +49 (0)89 1234-5678, Mon-Fri", "Hotline [PHONE], Mon-Fri"),
    ("my mobile is +4915112345678", "my mobile is [PHONE]"),
    ("Vienna store: +43 1 234 5602.", "Vienna store: [PHONE]."),
    ("Zurich: +41 44 123 4503", "Zurich: [PHONE]"),
    ("US office (555) 123-4567 or 555-123-4567", "US office [PHONE] or [PHONE]"),
    ("toll free 1-800-555-0199.", "toll free [PHONE]."),
    ("call 555.123.4567", "call [PHONE]"),
    ("Handy: 0176 12345678", "Handy: [PHONE]"),
    ("Tel. 089 1234 5678 or 0176/1234567", "Tel. [PHONE] or [PHONE]"),
    ("reach me at 030-12345678", "reach me at [PHONE]"),
    ("UK: +44 20 7946 0958", "UK: [PHONE]"),
])
def test_phone_numbers_in_international_and_local_formats(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Visa 4111 1111 1111 1111 exp 12/27", "Visa [CARD] exp 12/27"),
    ("card number 4111-1111-1111-1111", "card number [CARD]"),
    ("I paid with 5555555555554444.", "I paid with [CARD]."),
    ("Amex 3782 822463 10005", "Amex [CARD]"),
    ("Maestro 6759 6498 2643 8453, CVC 123", "Maestro [CARD], CVC 123"),
])
def test_card_numbers_that_pass_the_luhn_check(text, expected):
    assert redact(text) == expected


def test_card_like_numbers_that_fail_the_luhn_check_stay():
    # Long order and tracking numbers are digit runs too; the checksum tells them apart.
    assert not luhn_valid("1000234567891")
    assert redact("order 1000234567891 shipped") == "order 1000234567891 shipped"
    assert redact("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"


@pytest.mark.parametrize("text, expected", [
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
    ("refund to DE89370400440532013000.", "refund to [IBAN]."),
    ("GB82 WEST 1234 5698 7654 32 and NL91ABNA0417164300", "[IBAN] and [IBAN]"),
    ("at 40 EUR, AT61 1904 3002 3457 3201 was charged", "at 40 EUR, [IBAN] was charged"),
    ("my iban: de89 3704 0044 0532 0130 00", "my iban: [IBAN]"),
    # A mistyped IBAN fails the checksum, but the customer called it an IBAN.
    ("IBAN: DE89 3704 0044 0532 0130 01", "IBAN: [IBAN]"),
])
def test_ibans(text, expected):
    assert redact(text) == expected


def test_iban_checksum():
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")
    assert not iban_valid("DE89")


@pytest.mark.parametrize("text, expected", [
    ("please refund to account 12345678", "please refund to account [ACCOUNT]"),
    ("acct no. 9876543210", "acct no. [ACCOUNT]"),
    ("Account number: 12-345-678.", "Account number: [ACCOUNT]."),
    ("my bank account # 00123456789", "my bank account # [ACCOUNT]"),
    ("Kontonummer 1234567890", "Kontonummer [ACCOUNT]"),
    ("a/c 55667788", "a/c [ACCOUNT]"),
    ("the account number is 0123456789", "the account number is [ACCOUNT]"),
])
def test_account_numbers_after_a_keyword(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "Express shipping costs 14.90 EUR; standard is 4.95 EUR, free from 75 EUR.",
    "Your order NG-2026-118734 was placed on 2026-11-20 at 14:35.",
    "Order #NG-2026-004512 (3 items, 249.80 EUR) ships on 20.11.2026.",
    "The chat is staffed 8:00-20:00 CET, the store is open 09:30-18:00.",
    "Klarna invoice for orders from 10 to 1,500 EUR; 30 days to pay.",
    "Our store is at Sendlinger Str. 12, 80331 Munich; the warehouse is at 01067 Dresden.",
    "Tracking number 00340434161234567890 shows no scan since 18/11/2026.",
    "Nimbus Cirrus 2 tent, item 100234, size 210 x 140 cm, 2.35 kg, 3000 mm hydrostatic head.",
    "Go to My account > Privacy > Request my data; it takes up to 30 days.",
    "I created my account 3 days ago and the account 2026 voucher is missing.",
    "500 Trail Points give a 10 EUR voucher, valid for 3 years.",
    "Returns within 30 days; refunds within 5 business days after inspection.",
    "Version 2.1.3 of the app, build 20261120.",
])
def test_ordinary_customer_service_numbers_are_left_alone(text):
    assert redact(text) == text


def test_mixed_message_counts_each_kind_once():
    text = ("Hi, I'm Anna (anna@example.com, +49 176 12345678). Order NG-2026-118734 for 129.90 EUR was "
            "charged twice to my card 4111 1111 1111 1111; please refund to IBAN DE89 3704 0044 0532 0130 00 "
            "or account 12345678 by 20.11.2026.")
    redacted, counts = redact_counted(text)
    assert redacted == (
        "Hi, I'm Anna ([EMAIL], [PHONE]). Order NG-2026-118734 for 129.90 EUR was charged twice to my card "
        "[CARD]; please refund to IBAN [IBAN] or account [ACCOUNT] by 20.11.2026."
    )
    assert counts == {"[EMAIL]": 1, "[PHONE]": 1, "[CARD]": 1, "[IBAN]": 1, "[ACCOUNT]": 1}
    assert redact(redacted) == redacted  # placeholders are never redacted again


def test_demo_help_center_loses_only_contact_details():
    """Over every text of the demo help center (prices, hours, dates, order examples) only the
    international phone numbers and the e-mail addresses are replaced."""
    total: Counter[str] = Counter()
    phones = emails = 0
    for path in sorted((DEMO / "helpcenter").rglob("*")):
        if path.suffix in {".md", ".txt", ".csv", ".jsonl", ".html"}:
            text = path.read_text(encoding="utf-8")
            total.update(redact_counted(text)[1])
            phones += len(re.findall(r"\+\d", text))
            emails += text.count("@")
    assert phones and emails, "the demo help center has contact details to test with"
    assert total == {"[PHONE]": phones, "[EMAIL]": emails}
