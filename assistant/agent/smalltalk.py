"""Greetings, thanks and goodbyes: answered as such, not searched in the help center.

Searched like questions, "Hi!" and "Thanks, that helps" found nothing and got the refusal ("I
couldn't find this in our help center ..."), and two such turns in a row made the escalation
policy open a ticket for a customer who had only said hello and thank you. A message is small talk
only when every part of it (split at punctuation) is one of these phrases, so "Hi, where is my
order?" and "Thanks. How long do returns take?" stay questions.

    >>> smalltalk("Thanks a lot, bye!")
    'goodbye'
    >>> smalltalk("Hi, where is my order?") is None
    True
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["greeting", "thanks", "goodbye"]

_GREETING = (r"(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening|day))(?: there| team| all| everyone)?"
             r"|(?:is )?any(?:one|body) (?:there|around|here)")
_THANKS = (r"(?:(?:many )?thanks|thank you|thx|ty|cheers)(?: (?:so|very) much| a lot| a million| again| for (?:the|your) "
           r"(?:help|answer|quick reply|reply|info|information))?"
           r"|(?:ok|okay|great|perfect|awesome|cool|brilliant|super|excellent|fine|alright|all right|nice|wonderful|lovely|"
           r"got it|understood|i see|noted)"
           r"|that(?:'s| is| was)? (?:very |really |super )?(?:helpful|great|perfect|it|all|clear)|that helps(?: a lot)?"
           r"|(?:no,? )?that(?:'s| is) all(?: for now)?|nothing else|all (?:good|set|sorted)")
_BYE = r"bye|goodbye|bye bye|see you(?: later| soon)?|have a (?:nice|good|great|lovely) (?:day|one|evening|weekend)|take care"
_KINDS: dict[Kind, str] = {"goodbye": _BYE, "thanks": _THANKS, "greeting": _GREETING}
_ANY = "|".join(f"(?:{pattern})" for pattern in _KINDS.values())
# A name may follow ("Hi Anna", "thanks Tom"): one capitalised word.
_NAME = r"(?: [A-Z][\w']*)?"
_PART = re.compile(rf"(?:(?i:{_ANY}){_NAME} )*(?i:{_ANY}){_NAME}")
_FOUND = {kind: re.compile(rf"\b(?:{pattern})\b", re.I) for kind, pattern in _KINDS.items()}
_PARTS = re.compile(r"[.,;:!?\n()\-–—]+|\s+(?:and|&)\s+")
_NOT_WORDS = re.compile(r"[^\w\s']+")
_ANSWERS = {"no", "nope", "yes", "yeah", "yep"}

REPLIES: dict[Kind, str] = {
    "greeting": "Hello! What can I help you with today?",
    "thanks": "You're welcome! Is there anything else I can help you with?",
    "goodbye": "Thank you for getting in touch. Goodbye!",
}


def smalltalk(text: str) -> Kind | None:
    """``goodbye``, ``thanks`` or ``greeting`` when the whole message is such phrases (a goodbye before
    thanks before a greeting: "thanks, bye" is a goodbye), else None."""
    parts = [" ".join(_NOT_WORDS.sub(" ", part).split()) for part in _PARTS.split(text)]
    # "No, that's all": a bare no or yes goes with small talk, but is none on its own.
    parts = [part for part in parts if part and part.lower() not in _ANSWERS]
    if not parts or len(parts) > 4:
        return None
    if not all(_PART.fullmatch(part) for part in parts):
        return None
    return next((kind for kind, found in _FOUND.items() if any(found.search(part) for part in parts)), None)
