"""Document loaders, exercised on real files written into tmp_path (real PDFs, real DOCX packages)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from ingest.loaders import SUPPORTED_SUFFIXES, LoadedDocument, LoaderError, load_file
from tests.conftest import SHARED

SCIFACT_CORPUS = SHARED / "datasets" / "scifact" / "corpus.jsonl"

PAGE_SENTENCES = [
    "Refunds are issued within fourteen days of receiving the return.",
    "Shipping to Canada takes five to seven business days.",
    "Gift cards cannot be exchanged for cash.",
]


def _load_one(path: Path) -> LoadedDocument:
    documents = load_file(path)
    assert len(documents) == 1
    return documents[0]


def _pdf_bytes(pages: list[str], title: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    for sentence in pages:
        pdf.add_page()
        if sentence:
            pdf.multi_cell(0, 10, sentence)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def three_page_pdf() -> bytes:
    return _pdf_bytes(PAGE_SENTENCES, title="Store Policies")


# --- PDF ---------------------------------------------------------------------------------------------------


def test_pdf_keeps_one_section_per_page_with_page_numbers(tmp_path: Path, three_page_pdf: bytes) -> None:
    path = tmp_path / "policies.pdf"
    path.write_bytes(three_page_pdf)
    document = _load_one(path)
    assert document.format == "pdf"
    assert document.source == str(path)
    assert document.title == "Store Policies"
    assert [section.page for section in document.sections] == [1, 2, 3]
    assert [section.heading for section in document.sections] == [None, None, None]
    for section, sentence in zip(document.sections, PAGE_SENTENCES):
        assert " ".join(section.text.split()) == sentence


def test_pdf_leaves_out_running_headers_and_footers_but_keeps_lines_found_once(tmp_path: Path) -> None:
    bodies = ["Returns are free within 30 days.", "Express delivery costs 14.90 EUR.", "Repairs take 10 working days."]
    pages = [f"ACME OUTDOOR | Help Center\n{body}\nPolicies - page {n} of 3" for n, body in enumerate(bodies, start=1)]
    pages[1] = "Express delivery\n" + pages[1]  # a heading at the top of one page only: content
    path = tmp_path / "policies.pdf"
    path.write_bytes(_pdf_bytes(pages))
    sections = _load_one(path).sections
    assert [" ".join(section.text.split()) for section in sections] == bodies
    assert [section.heading for section in sections] == [None, "Express delivery", "Express delivery"]
    single = tmp_path / "one.pdf"
    single.write_bytes(_pdf_bytes(["ACME OUTDOOR | Help Center\nReturns are free.\nPolicies - page 1 of 1"]))
    kept = _load_one(single).sections[0]  # one page: nothing recurs, nothing is left out
    assert (kept.heading, kept.text) == ("ACME OUTDOOR | Help Center", "Returns are free.\nPolicies - page 1 of 1")


def test_pdf_sections_follow_headings_across_pages(tmp_path: Path) -> None:
    pages = ["Store Policies\nReturns are free within 30 days.\n1. Refunds\nRefunds take five days. Please include:\n"
             "- your order number\nand the reason",
             "Refunds are paid to the card you used.\nExtended warranty\nTents get five years.\n4. Registration\n"
             "Register within 60 days.",
             "How to claim\n8. Submitting\nSubmit the form.\nThanks for reading"]
    path = tmp_path / "policies.pdf"
    path.write_bytes(_pdf_bytes(pages, title="Store Policies"))
    found = [(s.page, s.heading, " ".join(s.text.split())) for s in _load_one(path).sections]
    assert found == [
        (1, None, "Returns are free within 30 days."),  # the title line is the title, not a heading
        (1, "1. Refunds", "Refunds take five days. Please include: - your order number and the reason"),
        (2, "1. Refunds", "Refunds are paid to the card you used."),  # the section goes on across the page break
        (2, "Extended warranty", "Tents get five years."),
        (2, "Extended warranty > 4. Registration", "Register within 60 days."),
        (3, "How to claim > 8. Submitting", "Submit the form. Thanks for reading"),  # nothing after the last line
    ]


def test_pdf_skips_blank_pages_and_falls_back_to_file_name_for_title(tmp_path: Path) -> None:
    path = tmp_path / "shipping_guide.pdf"
    path.write_bytes(_pdf_bytes(["First page text.", "", "Third page text."]))
    document = _load_one(path)
    assert document.title == "Shipping guide"
    assert [section.page for section in document.sections] == [1, 3]


def test_pdf_without_any_text_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(_pdf_bytes(["", ""]))
    with pytest.raises(LoaderError, match=r"^PDF has no extractable text \(scanned image\?\)$"):
        load_file(path)


def test_truncated_pdf_is_rejected_with_a_reason(tmp_path: Path, three_page_pdf: bytes) -> None:
    path = tmp_path / "truncated.pdf"
    path.write_bytes(three_page_pdf[: len(three_page_pdf) // 2])
    with pytest.raises(LoaderError, match=r"^not a valid PDF \(EOF marker not found"):
        load_file(path)


def test_random_bytes_named_pdf_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "noise.pdf"
    path.write_bytes(os.urandom(4096).replace(b"%PDF-", b"xxxxx"))
    with pytest.raises(LoaderError, match=r"^not a valid PDF \(no %PDF header\)$"):
        load_file(path)


def test_password_protected_pdf_is_rejected(tmp_path: Path, three_page_pdf: bytes) -> None:
    writer = PdfWriter(clone_from=io.BytesIO(three_page_pdf))
    writer.encrypt(user_password="secret", owner_password="owner")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as stream:
        writer.write(stream)
    with pytest.raises(LoaderError, match=r"^PDF is encrypted"):
        load_file(path)


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path, three_page_pdf: bytes) -> None:
    writer = PdfWriter(clone_from=io.BytesIO(three_page_pdf))
    writer.encrypt(user_password="", owner_password="owner")
    path = tmp_path / "restricted.pdf"
    with path.open("wb") as stream:
        writer.write(stream)
    assert PdfReader(path).is_encrypted
    assert [section.page for section in _load_one(path).sections] == [1, 2, 3]


# --- DOCX --------------------------------------------------------------------------------------------------


def test_docx_heading_paths_and_tables(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Welcome to the help centre.")
    document.add_heading("Returns", level=1)
    document.add_paragraph("You can return most items.")
    document.add_heading("Refunds", level=2)
    document.add_paragraph("Refunds take five days.")
    table = document.add_table(rows=3, cols=2)
    for row, values in zip(table.rows, [("Method", "Days"), ("Card", "5")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    table.cell(2, 0).merge(table.cell(2, 1)).text = "Cash refunds are not offered."
    document.add_heading("Exchanges", level=2)
    document.add_paragraph("Exchanges are free.")
    document.add_heading("Shipping", level=1)
    document.add_paragraph("We ship worldwide.")
    path = tmp_path / "help.docx"
    document.save(str(path))

    loaded = _load_one(path)
    assert loaded.format == "docx"
    assert loaded.title == "Returns"  # no core title, no Title paragraph: the first Heading 1
    assert [(section.heading, section.text) for section in loaded.sections] == [
        (None, "Welcome to the help centre."),
        ("Returns", "You can return most items."),
        ("Returns > Refunds", "Refunds take five days.\n\nMethod | Days\nCard | 5\nCash refunds are not offered."),
        ("Returns > Exchanges", "Exchanges are free."),
        ("Shipping", "We ship worldwide."),
    ]


def test_docx_title_prefers_core_properties_then_title_style(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Customer Handbook", level=0)
    document.add_heading("Accounts", level=1)
    document.add_paragraph("Reset your password from the login page.")
    path = tmp_path / "handbook.docx"
    document.save(str(path))
    loaded = _load_one(path)
    assert loaded.title == "Customer Handbook"
    assert loaded.sections[0].heading == "Customer Handbook > Accounts"

    document.core_properties.title = "Handbook 2026"
    document.save(str(path))
    assert _load_one(path).title == "Handbook 2026"


@pytest.mark.parametrize("content", [b"this is not a zip file at all", b"PK\x03\x04" + bytes(range(256)) * 4])
def test_corrupt_docx_is_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(content)
    with pytest.raises(LoaderError, match=r"^not a valid DOCX file: "):
        load_file(path)


# --- HTML --------------------------------------------------------------------------------------------------

HTML_PAGE = """<!DOCTYPE html>
<html><head><title>Returns | Acme Help</title><style>.menu { color: red; }</style>
<script>var tracking = "SCRIPT_TEXT";</script></head>
<body>
  <header><h1>Acme site header</h1></header>
  <nav><a href="/">NAV_HOME</a> <a href="/x">NAV_OTHER</a></nav>
  <div role="navigation">ROLE_NAV_TEXT</div>
  <main>
    <nav class="breadcrumbs">NAV_BREADCRUMB</nav>
    <div role="banner">ROLE_BANNER_TEXT</div>
    <p>Intro   text with
       extra   whitespace.</p>
    <!-- COMMENT_TEXT -->
    <h1>Returns</h1>
    <p>Most items can be <b>returned</b> within 30&nbsp;days.</p>
    <h2>Refunds <small>(cards)</small></h2>
    <ul><li>Card refunds take 5 days.</li><li>PayPal refunds take 2 days.</li></ul>
    <table><tr><th>Method</th><th>Days</th></tr><tr><td>Card</td><td>5</td></tr></table>
    <h2>Exchanges</h2>
    <p>Exchanges are free.</p>
    <form><label>FORM_TEXT</label><input name="q"></form>
    <noscript>NOSCRIPT_TEXT</noscript>
    <aside>ASIDE_IN_MAIN</aside><iframe src="x">IFRAME_TEXT</iframe><svg><text>SVG_TEXT</text></svg>
    <footer>FOOTER_IN_MAIN</footer>
  </main>
  <aside>ASIDE_TEXT</aside>
  <footer>FOOTER_TEXT</footer>
</body></html>
"""


def test_html_drops_chrome_and_splits_at_headings(tmp_path: Path) -> None:
    path = tmp_path / "returns.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    document = _load_one(path)
    assert document.format == "html"
    assert document.title == "Returns"  # the <title> "Returns | Acme Help" without the site's name
    assert [(section.heading, section.text) for section in document.sections] == [
        (None, "Intro text with extra whitespace."),
        ("Returns", "Most items can be returned within 30 days."),
        (
            "Returns > Refunds (cards)",
            "Card refunds take 5 days.\n\nPayPal refunds take 2 days.\n\nMethod | Days\n\nCard | 5",
        ),
        ("Returns > Exchanges", "Exchanges are free."),
    ]
    everything = " ".join(section.text for section in document.sections)
    chrome = ["SCRIPT", "NAV_", "ROLE_", "COMMENT", "FORM", "NOSCRIPT", "ASIDE", "IFRAME", "SVG", "FOOTER", "site header"]
    for absent in chrome:
        assert absent not in everything


@pytest.mark.parametrize(("title", "h1", "expected"), [
    ("Returns | Acme Help", "Returns", "Returns"),
    ("Acme Help - Returns", "Returns", "Returns"),
    ("Returns and refunds", "Returns", "Returns and refunds"),  # more than a site's name: the page's own title
    ("Returns: 30 days", "Returns: 30 days", "Returns: 30 days"),
    ("Acme Help", "Returns", "Acme Help"),
])
def test_html_title_leaves_out_the_sites_name(tmp_path: Path, title: str, h1: str, expected: str) -> None:
    path = tmp_path / "page.html"
    path.write_text(f"<html><head><title>{title}</title></head><body><main><h1>{h1}</h1><p>Text.</p></main></body></html>")
    assert _load_one(path).title == expected


def test_html_without_main_uses_body_and_first_h1_as_title(tmp_path: Path) -> None:
    path = tmp_path / "page.HTM"
    path.write_bytes(
        "<html><body><footer>Foot</footer><h1>Café hours</h1><p>Open daily.</p></body></html>".encode("cp1252")
        .replace(b"<html>", b'<html><head><meta charset="windows-1252"></head>')
    )
    document = _load_one(path)
    assert document.title == "Café hours"
    assert [(section.heading, section.text) for section in document.sections] == [("Café hours", "Open daily.")]


def test_html_layout_table_is_read_as_blocks_not_one_row(tmp_path: Path) -> None:
    path = tmp_path / "legacy.html"
    path.write_text(
        "<body><table><tr><td>Side menu</td><td><h1>Warranty</h1><p>Two years.</p>"
        "<table><tr><th>Part</th><th></th><th>Years</th></tr><tr><td>Battery</td><td></td><td>1</td></tr></table>"
        "</td></tr></table></body>",
        encoding="utf-8",
    )
    assert [(section.heading, section.text) for section in _load_one(path).sections] == [
        (None, "Side menu"),
        ("Warranty", "Two years.\n\nPart |  | Years\n\nBattery |  | 1"),
    ]


# --- Markdown ----------------------------------------------------------------------------------------------

MARKDOWN = """---
title: ignored front matter
tags: [a, b]
---
Before any heading, see [the policy](https://example.com/policy).

# Store Policies

## Returns

Items can be returned **within 30 days** and _unused_.

Keep the receipt. ![receipt icon](icon.png)

### Refunds

- Card: 5 days
- PayPal: 2 days

```bash
# not a heading
pip install **not emphasis**
```

## Shipping #

We use `snake_case_ids` in tracking numbers.

## Empty section

# Contact
"""


def test_markdown_heading_paths_front_matter_and_light_markup(tmp_path: Path) -> None:
    path = tmp_path / "store-policies.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    document = _load_one(path)
    assert document.format == "markdown"
    assert document.title == "Store Policies"
    assert [(section.heading, section.text) for section in document.sections] == [
        (None, "Before any heading, see the policy."),
        (
            "Store Policies > Returns",
            "Items can be returned within 30 days and unused.\n\nKeep the receipt. receipt icon",
        ),
        (
            "Store Policies > Returns > Refunds",
            "- Card: 5 days\n- PayPal: 2 days\n\n# not a heading\npip install **not emphasis**",
        ),
        ("Store Policies > Shipping", "We use snake_case_ids in tracking numbers."),
    ]
    assert "front matter" not in " ".join(section.text for section in document.sections)


def test_markdown_title_falls_back_to_prettified_stem(tmp_path: Path) -> None:
    path = tmp_path / "returns_and-refunds.markdown"
    path.write_text("## Only a subheading\n\nSome text.\n", encoding="utf-8")
    document = _load_one(path)
    assert document.title == "Returns and refunds"
    assert document.sections[0].heading == "Only a subheading"


# --- Plain text --------------------------------------------------------------------------------------------


def test_text_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffOpening hours\r\n\r\nWe open at 9 — every day.\r\n".encode("utf-8"))
    document = _load_one(path)
    assert document.format == "text"
    assert document.title == "Opening hours"
    assert len(document.sections) == 1
    assert document.sections[0].heading is None  # the first line is the title, stored once
    assert document.sections[0].text == "We open at 9 — every day."


def test_text_sections_follow_its_headings(tmp_path: Path) -> None:
    path = tmp_path / "terms.txt"
    path.write_text("GIFT CARD TERMS\n\nThese terms apply to all cards.\n\n1. ISSUER\nCards are issued by ACME GmbH.\n\n"
                    "VIENNA (second store)\nAddress:  Main street 1\nHours:    9:00 - 18:00\n\nHow to check your balance\n\n"
                    "Enter the card number online.\nACME GmbH\nWerkstrasse 21\n\nAcme Support Team\nWerkstrasse 21\n\n"
                    "Thanks for reading", encoding="utf-8")
    document = _load_one(path)
    assert document.title == "GIFT CARD TERMS"
    assert [(s.heading, s.text) for s in document.sections] == [
        (None, "These terms apply to all cards."),
        ("1. ISSUER", "Cards are issued by ACME GmbH."),  # numbered, opening a block
        ("VIENNA (second store)", "Address:  Main street 1\nHours:    9:00 - 18:00"),  # capitals, opening a block
        # alone between blank lines; a mixed-case line opening a block is text, and so is a last line
        ("How to check your balance", "Enter the card number online.\nACME GmbH\nWerkstrasse 21\n\n"
                                      "Acme Support Team\nWerkstrasse 21\n\nThanks for reading"),
    ]
    german = tmp_path / "ueber.txt"
    german.write_text("Nimbus Gear\n\nÜBER UNS\nWir verkaufen Ausrüstung.\n", encoding="utf-8")
    assert [(s.heading, s.text) for s in _load_one(german).sections] == [("ÜBER UNS", "Wir verkaufen Ausrüstung.")]


def test_text_falls_back_to_legacy_encodings(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("Café opening “hours”: 9–17".encode("cp1252"))
    assert _load_one(path).sections[0].text == "Café opening “hours”: 9–17"


def test_text_long_first_line_is_not_a_title(tmp_path: Path) -> None:
    path = tmp_path / "long_line.txt"
    path.write_text("word " * 40, encoding="utf-8")
    assert _load_one(path).title == "Long line"


def test_binary_file_named_txt_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(LoaderError, match=r"^looks like a binary file, not text$"):
        load_file(path)


# --- FAQ ---------------------------------------------------------------------------------------------------


def test_faq_csv_one_atomic_section_per_row(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "\ufeffQuestion,Answer,Category\n"
        'How do I reset my password?,"Use the ""Forgot password"" link, then check your email.",account\n'
        ",Orphan answer without a question,misc\n"
        "Do you ship abroad?,,shipping\n"
        "Can I pay by card?,Yes.,billing\n",
        encoding="utf-8",
    )
    document = _load_one(path)
    assert document.format == "faq"
    assert document.title == "FAQ"
    assert document.atomic_sections is True
    assert [(section.heading, section.text) for section in document.sections] == [
        (
            "How do I reset my password?",
            'How do I reset my password?\nUse the "Forgot password" link, then check your email.',
        ),
        ("Can I pay by card?", "Can I pay by card?\nYes."),
    ]


def test_faq_csv_semicolon_delimiter_with_commas_in_answers(tmp_path: Path) -> None:
    path = tmp_path / "billing_faq.csv"
    path.write_text(
        "q;response\n"
        "When am I billed?;Monthly, on the 1st, by card.\n"
        "Can I get an invoice?;Yes, from Settings, Billing.\n",
        encoding="utf-8",
    )
    document = _load_one(path)
    assert document.title == "Billing FAQ"
    assert [section.text for section in document.sections] == [
        "When am I billed?\nMonthly, on the 1st, by card.",
        "Can I get an invoice?\nYes, from Settings, Billing.",
    ]


def test_faq_csv_tab_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("QUESTIONS\tANSWERS\nIs there an app?\tYes, for iOS and Android.\n", encoding="utf-8")
    assert _load_one(path).sections[0].heading == "Is there an app?"


def test_faq_csv_missing_columns_names_found_and_expected(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("title;body\nA;B\n", encoding="utf-8")
    with pytest.raises(LoaderError) as error:
        load_file(path)
    message = str(error.value)
    assert "found columns: 'title', 'body'" in message
    assert "question" in message and "answer" in message


def test_faq_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "support-faq.jsonl"
    records = [{"Question": "Where is my order?", "Answer": "See Orders."}, {"q": "Empty?", "a": ""}]
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n\n", encoding="utf-8")
    document = _load_one(path)
    assert document.format == "faq"
    assert document.atomic_sections is True
    assert document.title == "Support FAQ"
    assert [section.text for section in document.sections] == ["Where is my order?\nSee Orders."]


def test_faq_jsonl_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text('{"question": "A?", "answer": "B."}\n\n{"question": "C?", "answer": \n', encoding="utf-8")
    with pytest.raises(LoaderError, match=r"^line 3: invalid JSON$"):
        load_file(path)


# --- BEIR --------------------------------------------------------------------------------------------------


def test_beir_corpus_detected_one_document_per_record(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    records = [
        {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever.", "metadata": {}},
        {"_id": "d2", "title": "", "text": "Untitled record."},
    ]
    path.write_text("\n".join(json.dumps(record) for record in records), encoding="utf-8")
    documents = load_file(path)
    assert [(d.source, d.title, d.format) for d in documents] == [
        (f"{path}#d1", "Aspirin", "beir"),
        (f"{path}#d2", "d2", "beir"),
    ]
    assert documents[0].sections[0].text == "Aspirin reduces fever."
    assert documents[0].sections[0].heading is None


def test_beir_duplicate_id_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', encoding="utf-8")
    with pytest.raises(LoaderError, match=r"^line 2: duplicate _id '1'$"):
        load_file(path)


def test_beir_queries_jsonl_is_refused_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text('{"_id": "q1", "text": "Does aspirin lower fever?", "metadata": {}}\n', encoding="utf-8")
    with pytest.raises(LoaderError, match=r"^BEIR queries file, not ingested: its records are the evaluation questions"):
        load_file(path)


def test_jsonl_with_id_is_a_beir_corpus_only_when_named_corpus_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    path.write_text('{"_id": "a1", "title": "Returns", "text": "Returns are free."}\n', encoding="utf-8")
    with pytest.raises(LoaderError, match=r"only from a file named corpus\.jsonl"):
        load_file(path)
    path = tmp_path / "Corpus.JSONL"  # the name, like the suffix, is matched case-insensitively
    path.write_text('{"_id": "a1", "title": "Returns", "text": "Returns are free."}\n', encoding="utf-8")
    assert [document.source for document in load_file(path)] == [f"{path}#a1"]


def test_faq_jsonl_with_id_keys_stays_an_faq(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text('{"_id": "1", "question": "Is there an app?", "answer": "Yes, for iOS and Android."}\n', encoding="utf-8")
    document = _load_one(path)
    assert document.format == "faq" and document.sections[0].text == "Is there an app?\nYes, for iOS and Android."


def test_jsonl_of_unknown_shape_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "click"}\n', encoding="utf-8")
    with pytest.raises(LoaderError, match="neither a BEIR corpus"):
        load_file(path)


@pytest.mark.needs(SCIFACT_CORPUS.is_file(), reason="shared SciFact corpus not present")
def test_real_scifact_corpus_sample(tmp_path: Path) -> None:
    with SCIFACT_CORPUS.open(encoding="utf-8") as stream:
        lines = [next(stream) for _ in range(50)]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    documents = load_file(path)
    assert len(documents) == 50
    first = json.loads(lines[0])
    assert documents[0].source == f"{path}#{first['_id']}"
    assert documents[0].title == first["title"]
    assert documents[0].sections[0].text == first["text"].strip()
    assert len({document.source for document in documents}) == 50


@pytest.mark.needs(SCIFACT_CORPUS.is_file(), reason="shared SciFact corpus not present")
def test_full_scifact_corpus_loads_every_record() -> None:
    documents = load_file(SCIFACT_CORPUS)
    assert len(documents) == 5183
    assert len({d.source for d in documents}) == 5183


# --- Dispatch ----------------------------------------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == {".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".txt", ".csv", ".jsonl"}


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "slides.xyz"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(LoaderError, match=r"^unsupported file type '\.xyz'$"):
        load_file(path)


def test_suffix_match_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "README.MD"
    path.write_text("# Readme\n\nHello.\n", encoding="utf-8")
    assert _load_one(path).format == "markdown"


@pytest.mark.parametrize("name", ["empty.md", "empty.pdf", "empty.docx", "empty.txt", "empty.csv", "empty.jsonl"])
def test_empty_file_is_rejected(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(LoaderError, match=r"^empty document: no text found$"):
        load_file(path)


@pytest.mark.parametrize(
    "name, content", [("blank.md", "\n\n   \n"), ("chrome.html", "<nav>Menu</nav><footer>x</footer>")]
)
def test_document_without_text_is_rejected(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LoaderError, match=r"^empty document: no text found$"):
        load_file(path)


def test_unexpected_errors_are_wrapped(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match=r"^FileNotFoundError: "):
        load_file(tmp_path / "missing.md")
