"""PDF loader: one section per page, so answers can cite the page a passage came from.

pypdf runs in its lenient mode because real-world PDFs are often slightly malformed yet readable;
when it still fails, the error names the likely cause (not a PDF, truncated, encrypted) so whoever
uploaded the file knows what to fix.
"""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PdfReadError

from .base import LoadedDocument, LoaderError, Section
from .text import title_from_stem

_SCAN_WINDOW = 1024  # PDF readers accept the header and the %%EOF marker anywhere this close to either end


def load_pdf(path: Path) -> LoadedDocument:
    data = path.read_bytes()
    if b"%PDF-" not in data[:_SCAN_WINDOW]:
        raise LoaderError("not a valid PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        _decrypt(reader)
        sections = [
            Section(text=text, page=number)
            for number, page in enumerate(reader.pages, start=1)
            if (text := (page.extract_text() or "").strip())
        ]
        metadata = reader.metadata
        title = str(metadata.title or "").strip() if metadata else ""
    except PdfReadError as exc:
        reason = "EOF marker not found; the file looks truncated" if b"%%EOF" not in data[-_SCAN_WINDOW:] else str(exc)
        raise LoaderError(f"not a valid PDF ({reason})") from exc
    if not sections:
        raise LoaderError("PDF has no extractable text (scanned image?)")
    return LoadedDocument(source=str(path), title=title or title_from_stem(path), format="pdf", sections=sections)


def _decrypt(reader: PdfReader) -> None:
    """Open PDFs locked only by an owner password (print/copy limits); refuse those that need a user password."""
    if not reader.is_encrypted:
        return
    try:
        opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except DependencyError as exc:
        raise LoaderError(f"PDF is encrypted with a cipher this installation cannot read ({exc})") from exc
    if not opened:
        raise LoaderError("PDF is encrypted (a password is needed to open it)")
