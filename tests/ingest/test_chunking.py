"""The chunker, with the real embedding model's tokenizer."""

from __future__ import annotations

from ingest.chunking import tokenizer_chunker
from ingest.loaders.base import LoadedDocument, Section

WRAPPED = """Our stores are open on weekdays and Saturdays, and every store has a
repair counter where you can hand in gear of any brand for a free quote
before any work starts.

Address:   Gumpendorfer Gasse 21, 1060 Vienna, Austria
Hours:     Monday to Friday  10:00 - 19:00
           Saturday           9:30 - 18:00
Services:  rental counter, click & collect, repair drop-off, Second Ascent
           take-back

Repair | Price
Zipper slider replacement (tent, jacket or sleeping bag) | 15 EUR
Complete zipper replacement on a tent door | 45 EUR

- Never store a tent wet. If you packed it wet, set it up or hang it to
dry within 24 hours, otherwise mould can form.
- Clean the tent by hand with lukewarm water."""


def _document(*sections: Section) -> LoadedDocument:
    return LoadedDocument(source="doc.txt", title="Stores", format="text", sections=list(sections))


def test_wrapped_prose_is_joined_and_rows_items_and_records_keep_their_lines(embedder):
    chunker = tokenizer_chunker(embedder.tokenizer, chunk_tokens=240, overlap=32)
    [[chunk]] = chunker.chunk([_document(Section(text=WRAPPED))])
    assert [" ".join(line.split()) for line in chunk.text.split("\n")] == [
        "Our stores are open on weekdays and Saturdays, and every store has a repair counter where you can hand in "
        "gear of any brand for a free quote before any work starts.",
        "",
        "Address: Gumpendorfer Gasse 21, 1060 Vienna, Austria",
        "Hours: Monday to Friday 10:00 - 19:00",
        "Saturday 9:30 - 18:00",
        "Services: rental counter, click & collect, repair drop-off, Second Ascent take-back",
        "",
        "Repair | Price",
        "Zipper slider replacement (tent, jacket or sleeping bag) | 15 EUR",
        "Complete zipper replacement on a tent door | 45 EUR",
        "",
        "- Never store a tent wet. If you packed it wet, set it up or hang it to dry within 24 hours, otherwise mould can form.",
        "- Clean the tent by hand with lukewarm water.",
    ]


def test_chunks_stay_in_their_section_fit_the_window_and_overlap(embedder):
    chunker = tokenizer_chunker(embedder.tokenizer, chunk_tokens=40, overlap=12)
    sentences = [f"Rule {n} says that parcel number {n} ships within {n} days." for n in range(1, 9)]
    returns = Section(text=" ".join(sentences), heading="Returns")
    hours = Section(text="We open at nine.", heading="Hours", page=2)
    drafts = chunker.chunk([_document(returns, hours)])[0]
    assert [d.section for d in drafts][-1] == "Hours" and drafts[-1].text == "We open at nine." and drafts[-1].page == 2
    in_returns = [d for d in drafts if d.section == "Returns"]
    assert len(in_returns) > 2
    counts = embedder.count_tokens([f"Stores > Returns\n{d.text}" for d in in_returns])
    assert max(counts) <= 40 + 2  # the window, with the tokenizer's two special tokens
    for before, after in zip(in_returns, in_returns[1:]):
        assert before.text.split(". ")[-1] in after.text  # the last sentence is repeated in the next chunk
    assert all(sentence in " ".join(d.text for d in in_returns) for sentence in sentences)


def test_signature_names_what_chunks_depend_on_besides_the_text(embedder):
    small = tokenizer_chunker(embedder.tokenizer, chunk_tokens=120, overlap=16)
    large = tokenizer_chunker(embedder.tokenizer, chunk_tokens=200, overlap=16)
    assert small.signature != large.signature
    assert small.signature == tokenizer_chunker(embedder.tokenizer, chunk_tokens=120, overlap=16).signature
