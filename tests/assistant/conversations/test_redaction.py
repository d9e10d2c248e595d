"""Redaction of personal and payment data: realistic values are replaced, the numbers of ordinary
customer service (prices, dates, times, order numbers, postcodes, versions) are left alone."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from assistant.conversations.redaction import iban_valid, luhn_valid, redact, redact_counted, redact_values
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


@pytest.mark.parametrize("text, expected", [
    ("Sure, it is jane dot doe at example dot com", "Sure, it is [EMAIL]"),
    ("mail jane[at]example[.]com please", "mail [EMAIL] please"),
    ("jane (at) example (dot) com", "[EMAIL]"),
    ("reach me: j.smith{at}mail.example.co.uk", "reach me: [EMAIL]"),
    ("JANE AT EXAMPLE DOT CO DOT UK", "[EMAIL]"),
    ("write to support at nimbusgear dot com.", "write to [EMAIL]."),
])
def test_obfuscated_email_addresses(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("My SSN is 123-45-6789.", "My SSN is [NATIONAL_ID]."),
    ("ssn: 123456789", "ssn: [NATIONAL_ID]"),
    ("social security number 078-05-1120", "social security number [NATIONAL_ID]"),
    ("NI number QQ 12 34 56 C, thanks", "NI number [NATIONAL_ID], thanks"),
    ("it's AB123456C", "it's [NATIONAL_ID]"),
    ("passport number C01X00T47 please", "passport number [NATIONAL_ID] please"),
    ("Personalausweis L01X00T47", "Personalausweis [NATIONAL_ID]"),
    ("tax ID: 12 345 678 901", "tax ID: [NATIONAL_ID]"),
])
def test_national_ids(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("my date of birth: 12/03/1985", "my date of birth: [DOB]"),
    ("DOB 1985-03-12, postcode 80331", "DOB [DOB], postcode 80331"),
    ("D.O.B. 03.12.1985", "D.O.B. [DOB]"),
    ("I was born on 12 March 1985.", "I was born on [DOB]."),
    ("born March 12th, 1985", "born [DOB]"),
    ("my birthday is on 3 May, can the voucher wait?", "my birthday is on [DOB], can the voucher wait?"),
    ("Geburtsdatum 12.03.1985", "Geburtsdatum [DOB]"),
])
def test_dates_of_birth_after_a_keyword(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("my IP is 203.0.113.7, the router 192.168.1.1.", "my IP is [IP], the router [IP]."),
    ("blocked from 10.0.0.12:8080", "blocked from [IP]:8080"),
    ("IPv6 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "IPv6 [IP]"),
    ("from 2001:db8::1 and fe80::1ff:fe23:4567:890a", "from [IP] and [IP]"),
    ("mapped ::ffff:192.0.2.1", "mapped [IP]"),
])
def test_ip_addresses(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    # Dates without a word that makes them a date of birth.
    "Delivered on 12 March 2026, ordered 2026-11-20, returned 03.12.2026.",
    "The birthday sale ends 12 March.",
    "My son's birthday present arrived broken on 3 May.",
    # Times, versions and numbers that look like addresses.
    "Open 09:30-18:00, the chat 8:00-20:00; the parcel was scanned at 12:30:45.",
    "Version 1.2.3.4 of the app, firmware 10.4.0.12, build 2.0.1.7, v4.1.0.2.",
    "1.000.000.000 EUR, 300.1.2.3, 1.2.3.4.5 and 1.234.567 are no addresses.",
    "MAC 00:1A:2B:3C:4D:5E; std::vector; a::b; see ::",
    # Numbers with dashes that are not social security numbers.
    "ISBN 978-3-16-148410-0, order NG-123-45-6789, room 123-45-67890.",
    "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000",
    "My passport expires in 2030; the tin holds 1000 g; ID card 12.",
    # "at" as a word, not an address.
    "I bought it at amazon dot com, cheaper than at nimbusgear.com.",
    "jane at example.com",
    "Meet me at the store at 5; the jacket is at 30 percent off; look at example dot com.",
])
def test_near_misses_are_left_alone(text):
    assert redact(text) == text


def test_strings_inside_a_trace_are_redacted():
    trace = {"tools": [{"tool": "search_knowledge_base", "arguments": {"query": "refund to DE89370400440532013000?", "k": 4}}],
             "answer": {"rewritten_question": "Where is the refund for anna@example.com?", "relevance": 0.71}}
    assert redact_values(trace) == {
        "tools": [{"tool": "search_knowledge_base", "arguments": {"query": "refund to [IBAN]?", "k": 4}}],
        "answer": {"rewritten_question": "Where is the refund for [EMAIL]?", "relevance": 0.71}}


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


def test_identity_details_in_one_message_are_counted_by_kind():
    text = ("Locked out after 3 tries at 14:35. I'm Jane (jane dot doe at example dot com), born on 12 March 1985, "
            "SSN 123-45-6789, logging in from 203.0.113.7 with app version 4.2.0.1; order NG-2026-118734, 129.90 EUR.")
    redacted, counts = redact_counted(text)
    assert redacted == ("Locked out after 3 tries at 14:35. I'm Jane ([EMAIL]), born on [DOB], SSN [NATIONAL_ID], "
                        "logging in from [IP] with app version 4.2.0.1; order NG-2026-118734, 129.90 EUR.")
    assert counts == {"[EMAIL]": 1, "[DOB]": 1, "[NATIONAL_ID]": 1, "[IP]": 1}
    assert redact(redacted) == redacted


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
