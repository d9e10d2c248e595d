"""An e-mail's framing: the salutation and signature around what the customer or agent says.

"Hello,\\n\\nWhat does shipping to the UK cost?\\n\\nCheers,\\nFelix Schmid" says one thing; the
rest is a letter's form. Imported e-mail conversations keep it as written, and what reads their
meaning leaves it out: a negative message's topic (a cluster of one such message was once named
"does, felix, long", after its customer) and training examples made of agents' replies (a model
would learn to sign with an agent's name; ``finetune.conversation_export``).
"""

from __future__ import annotations

import re

_SALUTATION = re.compile(r"^(?:dear|hi|hello|hey|good (?:morning|afternoon|evening))\b[^.!?\n]{0,60},?$", re.IGNORECASE)
# A closing paragraph ("Kind regards,\nTobias\nNimbus Gear Customer Service") is short and ends no sentence.
_SIGNATURE_WORDS = 8


def strip_email_framing(text: str) -> str:
    """The message without its salutation paragraph and trailing signature paragraphs, on one line.

    >>> strip_email_framing("Hello,\\n\\nWhat does shipping to the UK cost?\\n\\nCheers,\\nFelix Schmid")
    'What does shipping to the UK cost?'
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    while len(paragraphs) > 1 and not re.search(r"[.?!]", paragraphs[-1]) and len(paragraphs[-1].split()) <= _SIGNATURE_WORDS:
        paragraphs.pop()
    if len(paragraphs) > 1 and _SALUTATION.match(paragraphs[0]):
        paragraphs.pop(0)
    return " ".join(" ".join(p.split()) for p in paragraphs)
