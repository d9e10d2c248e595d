"""Markdown loader: sections at ATX headings, markup stripped lightly so chunks read as prose.

Only what would otherwise pollute embeddings is removed (link targets, emphasis markers, rules,
table separator rows); code blocks are kept verbatim and never scanned for headings, because a
``# comment`` inside a shell snippet is not a heading.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import LoadedDocument
from .text import SectionBuilder, decode_text, title_from_stem

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_BLOCKQUOTE = re.compile(r"^ {0,3}(?:>[ \t]?)+")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_PROTECTED_BASE = 0xE000  # private-use code points stand in for escaped characters while emphasis is stripped
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image → alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # inline link → text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference link → text
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolink → address
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"\*(?=[^\s*])(.+?)(?<=[^\s*])\*"), r"\1"),  # emphasis with *
    (re.compile(r"(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)"), r"\1"),  # emphasis with _, not snake_case
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
]


def load_markdown(path: Path) -> LoadedDocument:
    text = _FRONT_MATTER.sub("", decode_text(path.read_bytes()), count=1)
    text = _HTML_COMMENT.sub("", text)
    builder = SectionBuilder()
    title: str | None = None
    body: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                fence = None
            else:
                body.append(line.rstrip())
            continue
        if opening := _FENCE.match(line):
            fence = opening.group(1)
            continue
        if heading := _HEADING.match(line):
            builder.add(_paragraphs(body))
            body = []
            heading_text = _strip_inline(heading.group(2) or "").strip()
            level = len(heading.group(1))
            if level == 1 and title is None and heading_text:
                title = heading_text
            builder.heading(level, heading_text)
            continue
        if _LINK_DEFINITION.match(line) or _RULE.match(line) or _TABLE_SEPARATOR.match(line):
            continue
        body.append(_strip_inline(_BLOCKQUOTE.sub("", line)).rstrip())
    builder.add(_paragraphs(body))
    return LoadedDocument(
        source=str(path), title=title or title_from_stem(path), format="markdown", sections=builder.sections()
    )


def _paragraphs(lines: list[str]) -> str:
    """Join lines, keeping single line breaks (lists) and collapsing runs of blank lines to one paragraph break."""
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _strip_inline(line: str) -> str:
    """Remove inline markup outside code spans; code spans lose only their backticks."""
    parts = _CODE_SPAN.split(line)
    # split() with two groups yields: text, fence, code, text, fence, code, ..., text
    out: list[str] = []
    for index in range(0, len(parts), 3):
        out.append(_strip_markup(parts[index]))
        if index + 2 < len(parts):
            out.append(parts[index + 2])
    return "".join(out)


def _strip_markup(text: str) -> str:
    text = _ESCAPE.sub(lambda match: chr(_PROTECTED_BASE + ord(match.group(1))), text)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return re.sub("[\ue000-\ue07f]", lambda match: chr(ord(match.group(0)) - _PROTECTED_BASE), text)
