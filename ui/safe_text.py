"""Text from customers and documents shown as text: never as markup, links or images.

Streamlit renders ``st.markdown`` as Markdown (with HTML switched off). A customer message or a
passage may hold Markdown of its own (``![x](https://tracker/pixel.png)``, ``[click](https://…)``,
headings, tables); rendered, it would load images and show links in the chat or in the operator
pages. ``literal`` escapes every character Markdown gives meaning to, so the text reads exactly as
written and nothing in it turns into markup.
"""

from __future__ import annotations

import re

# CommonMark's ASCII punctuation that may start or shape markup, plus < and > (autolinks, quotes).
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=:$&])")


def literal(text: str) -> str:
    """``text`` escaped for ``st.markdown``: shown as written, line breaks kept."""
    escaped = _MARKUP.sub(r"\\\1", text)
    return escaped.replace("\n", "  \n")  # a hard line break where the text has one
