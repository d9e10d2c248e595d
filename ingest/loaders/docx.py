"""DOCX loader: sections at "Title"/"Heading N" paragraphs, tables read row by row.

Body paragraphs and tables are read in document order (a table usually belongs to the heading above
it). Headers, footers, comments and text boxes are not read: they are page furniture, not content.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from .base import LoadedDocument, LoaderError
from .text import SectionBuilder, title_from_stem

_HEADING_STYLE = re.compile(r"heading (\d)", re.IGNORECASE)


def load_docx(path: Path) -> LoadedDocument:
    document = _open(path)
    builder = SectionBuilder()
    styled_title = first_h1 = ""
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            builder.add("\n".join(_table_rows(block)))
            continue
        text = block.text.strip()
        level = _heading_level(block)
        if level is None:
            builder.add(text)
            continue
        builder.heading(level, text)
        if level == 0 and not styled_title:
            styled_title = text
        elif level == 1 and not first_h1:
            first_h1 = text
    title = (document.core_properties.title or "").strip() or styled_title or first_h1 or title_from_stem(path)
    return LoadedDocument(source=str(path), title=title, format="docx", sections=builder.sections())


def _open(path: Path) -> Document:
    # python-docx reports any non-ZIP file as "Package not found", which reads like a missing file.
    if not zipfile.is_zipfile(path):
        raise LoaderError("not a valid DOCX file: not a ZIP package (a .doc saved under a .docx name?)")
    try:
        return docx.Document(str(path))
    except Exception as exc:  # the package is a ZIP but not a Word document; python-docx has no single error type
        raise LoaderError(f"not a valid DOCX file: {type(exc).__name__}: {exc}") from exc


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for the "Title" style (above Heading 1), N for "Heading N", None for body text."""
    name = paragraph.style.name if paragraph.style is not None else ""
    if name.lower() == "title":
        return 0
    match = _HEADING_STYLE.fullmatch(name)
    return int(match.group(1)) if match else None


def _table_rows(table: Table) -> list[str]:
    """Each row as its cells joined with " | "; a merged cell is reported once per row, not once per grid column."""
    rows = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # python-docx repeats a horizontally merged cell for each column it spans
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
