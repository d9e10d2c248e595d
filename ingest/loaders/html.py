"""HTML loader: the page's own content, split at h1-h6, without site chrome.

The title is the page's: its <h1> where the <title> only adds the site's name to it, else the
<title>, else the <h1>.

Navigation, headers, footers, scripts and forms repeat on every page of a help centre; indexing
them would make every page match every query about the menu, so they are removed before reading.
"""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup
from bs4.element import CData, NavigableString, PreformattedString, Tag

from .base import LoadedDocument, Section
from .text import SectionBuilder, title_from_stem

_CHROME_TAGS = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg"]
_CHROME_ROLES = ["navigation", "banner", "contentinfo"]
_SEPARATORS = "|-–—·:»"  # between a page's name and its site's in a <title>
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {
    "address", "article", "blockquote", "body", "br", "caption", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "hr", "li", "main", "ol", "p", "section", "summary", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip


def load_html(path: Path) -> LoadedDocument:
    # Bytes, not str: BeautifulSoup then honours the page's <meta charset>.
    soup = BeautifulSoup(path.read_bytes(), "lxml")
    for element in soup.find_all(_CHROME_TAGS) + soup.find_all(attrs={"role": _CHROME_ROLES}):
        if not element.decomposed:
            element.decompose()
    root = _content_root(soup)
    title = _normalise(soup.title.get_text(" ")) if soup.title else ""
    h1 = root.find("h1")
    heading = _normalise(h1.get_text(" ")) if h1 else ""
    if heading and (not title or _is_site_suffixed(title, heading)):
        title = heading
    reader = _Reader()
    reader.read(root)
    return LoadedDocument(
        source=str(path), title=title or title_from_stem(path), format="html", sections=reader.sections()
    )


def _content_root(soup: BeautifulSoup) -> Tag:
    """<main>, else the page's single outermost <article>, else <body>: several articles means a listing page."""
    if main := soup.find("main"):
        return main
    articles = [article for article in soup.find_all("article") if article.find_parent("article") is None]
    if len(articles) == 1:
        return articles[0]
    return soup.body or soup


def _is_site_suffixed(title: str, heading: str) -> bool:
    """Whether ``title`` is the page's ``heading`` with the site's name beside it ("Returns | Acme Help",
    "Acme Help - Returns"): the name is chrome, and every citation and topic would repeat it."""
    if title.startswith(heading):
        rest = title[len(heading):].strip()
        return bool(rest) and rest[0] in _SEPARATORS
    if title.endswith(heading):
        rest = title[:-len(heading)].strip()
        return bool(rest) and rest[-1] in _SEPARATORS
    return False


def _normalise(text: str) -> str:
    return " ".join(text.split())


class _Reader:
    """Walks the tree in document order, turning block elements into paragraphs and headings into sections."""

    def __init__(self) -> None:
        self._builder = SectionBuilder()
        self._inline: list[str] = []

    def read(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                # Comments, doctypes and processing instructions are PreformattedStrings too; CDATA is text.
                if not isinstance(child, PreformattedString) or isinstance(child, CData):
                    self._inline.append(str(child))
            elif not isinstance(child, Tag):
                continue
            elif child.name in _HEADINGS:
                self._end_paragraph()
                self._builder.heading(_HEADINGS[child.name], _normalise(child.get_text(" ")))
            elif child.name == "tr" and not child.find(["table", *_HEADINGS]):
                # A data row reads as "cell | cell"; a layout row (nested tables, headings) is read as blocks below.
                self._end_paragraph()
                cells = [_normalise(cell.get_text(" ")) for cell in child.find_all(["td", "th"], recursive=False)]
                if any(cells):
                    self._builder.add(" | ".join(cells))
            elif child.name == "pre":
                self._end_paragraph()
                self._builder.add(child.get_text())
            elif child.name in _BLOCKS:
                self._end_paragraph()
                self.read(child)
                self._end_paragraph()
            else:
                self.read(child)

    def sections(self) -> list[Section]:
        self._end_paragraph()
        return self._builder.sections()

    def _end_paragraph(self) -> None:
        self._builder.add(_normalise("".join(self._inline)))
        self._inline = []
