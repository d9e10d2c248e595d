"""Answers and passages as the support check reads them: sentences, claims, content words, numbers.

An answer is split into sentences; a sentence that asserts something is a *claim*. Questions back,
offers and pleasantries written around an answer ("Would you like me to book it?", "Let me know if
you need anything else.", "Sure, let me check.") assert nothing about the passages, so they are
not claims (human agents write them in most replies: DSTC9, BENCHMARKS.md). A bare "Yes, they do."
asserts the question, so it is read together with it. Passages are split the same way into
``Unit``s, each with its headings as context (``grounding`` says how claims are matched to them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from assistant.retrieval.bm25_index import tokenize
from assistant.retrieval.types import Hit

Method = Literal["verifier", "overlap"]
MIN_CLAIM_WORDS = 2  # content words besides numbers that a claim needs to say what its numbers are
MAX_PLEASANTRY_WORDS = 16  # a longer sentence that opens like a pleasantry is a claim (the answer follows the process talk)

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# Sentence ends, line breaks and list bullets; a decimal point ("14.90") is never followed by a space.
# A spaced dash breaks an inline list ("- free returns - free repairs"), not a range ("10:00 - 19:00").
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*\n+\s*|(?<!\d)\s+-\s+(?=\S)|\s+-\s+(?=[^\d\s])")
_LEAD_IN = re.compile(
    r"^\s*(?:(?:the\s+)?answer(?:\s+to\s+(?:the|this|your)\s+question)?\s+is\s*:?|answer\s*:)\s*", re.IGNORECASE
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_LIST_MARKER = re.compile(r"(?:[-*•]|\d{1,2}[.)])")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NEGATION = re.compile(r"\b(?:not|never|cannot|none|nothing|nor|no longer|neither)\b|n['’]t\b", re.IGNORECASE)
_YES_NO = re.compile(r"^\s*(yes|no)\b[,.!:;]?\s*", re.IGNORECASE)
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
    "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30",
    "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
}
_TENS = {w: int(_NUMBER_WORDS[w]) for w in ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")}
_UNITS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
_FULL_HOUR = re.compile(r"(?<=^\d)(?::00)+$|(?<=^\d\d)(?::00)+$")
# Offers, pleasantries and the agent's own process, written by human agents around their answers.
_PLEASANTRY = re.compile(
    r"^\W*(?:(?:yeah|yes|ok|okay|sure|absolutely|alright|all right|great|well|so|perfect|certainly)\W+)*(?:"
    r"let me|let us|please let me|(?:i )?hope (?:this|that)|i(?:'m| am) happy|happy to|glad to|thanks?\b|you'?re welcome|"
    r"i apologi[sz]e|sorry for|one moment|just a (?:moment|second)|give me a (?:moment|second)|i(?:'d| would) be happy|"
    r"i can (?:check|look|help|book|reserve|search|find|make)|i(?:'ll| will) (?:check|look|search|find|book|reserve)|"
    r"(?:that'?s )?a (?:good|great) question|feel free|enjoy|have a (?:good|great|nice|wonderful)|is there anything|"
    r"anything else|how else|would you like|do you (?:want|need)|shall i|should i|can i help|if you (?:need|have|want|"
    r"would|'d|think|are|'re)|good (?:morning|afternoon|evening)|hello\b|hi\b|i don'?t know)", re.IGNORECASE)
# A question back or an offer run on without a full stop ("... at Dolores Park Any other question?") starts a new sentence.
_RUN_ON = re.compile(r"(?<=[a-z0-9])\s+(?=(?:Any|Anything|Is there|Do you|Would you|Can I|Could I|Will that|Did you|Are you|"
                     r"How else|Let me|Please|Have a|Thank)\b)")
# The same run on in lower case ("... but at a fee what else do you need?"): only a sentence that ends with a
# question mark is split there, so a statement is never cut.
_QUESTION_BACK = re.compile(r"\s+(?=(?:what else|how else|would (?:you|this|that)|should i|shall i|is there anything|"
                            r"anything else|do you (?:need|want)|can i|could i|will that|does that)\b)", re.IGNORECASE)
_YES_NO_OPENERS = ("is|are|was|were|am|do|does|did|can|could|will|would|shall|should|may|might|have|has|had|"
                   "isn't|aren't|don't|doesn't")
_ASKS_YES_NO = re.compile(rf"^\W*(?:{_YES_NO_OPENERS})\b", re.IGNORECASE)
_QUESTION_OPENER = re.compile(rf"^\W*(?:what|how|when|where|which|who|why|anything|any|{_YES_NO_OPENERS})\b", re.IGNORECASE)
# Spoken replies put the answer after the process talk: "sure let me check here okay it says that they don't ...".
_EVIDENCE = re.compile(r"\b(?:it says|says that|it shows|shows that|showing|i see that|looks like|(?:okay|ok|all right|alright) so)\b",
                       re.IGNORECASE)
# sklearn's English stop words, less words that carry facts in customer service ("next business day",
# "full refund", "send back"), plus the stubs that splitting contractions leaves ("don", "isn").
_STOP_WORDS = (ENGLISH_STOP_WORDS - {
    "next", "full", "back", "call", "bill", "fire", "find", "found", "part", "name", "system", "interest",
    "detail", "bottom", "top", "front", "side", "move", "empty", "fill", "thick", "thin", "amount", "first",
    "last", "keep", "take", "give", "put", "show", "free",
} - set(_NUMBER_WORDS)) | {"don", "doesn", "didn", "isn", "aren", "wasn", "weren", "won", "haven", "hasn", "hadn",
                           "shouldn", "wouldn", "couldn", "ll", "ve", "re", "yes", "ok", "sure"}


def split_sentences(text: str) -> list[str]:
    """Sentences and list items of a text; fragments under three words join the next one ("No." + its reason),
    a short list item after a semicolon ("PayPal; Apple Pay and Google Pay ...", not "PayPal Apple Pay ...")."""
    sentences: list[str] = []
    carry, joiner = "", " "
    for raw in _SENTENCE_BREAK.split(text):
        part = _BULLET.sub("", raw).strip()
        if not part or _LIST_MARKER.fullmatch(part):  # "4." split off its list item: a number that says nothing
            continue
        part = f"{carry}{joiner}{part}".strip() if carry else part
        if len(_WORD.findall(part)) < 3:
            carry, joiner = part, "; " if _BULLET.match(raw) else " "
            continue
        carry = ""
        sentences.append(part)
    if carry:
        if sentences and not carry.endswith((":", "?")):
            last = sentences[-1].rstrip(".;") if joiner == "; " else sentences[-1]
            sentences[-1] = f"{last}{joiner}{carry}"
        else:
            sentences.append(carry)
    return sentences


def content_terms(text: str) -> set[str]:
    """Stemmed content words, number words written as digits: what two statements must share to say the same."""
    words = [_NUMBER_WORDS.get(w, w) for w in (m.group(0).lower() for m in _WORD.finditer(text))]
    return set(tokenize(" ".join(w for w in words if w not in _STOP_WORDS)))


def numbers(text: str) -> set[str]:
    """Numbers as written, with decimal commas as points, full hours without their minutes ("8:00" → "8",
    as "8 AM" says it) and number words as digits ("two" → "2", "forty five" → "45")."""
    found = {_FULL_HOUR.sub("", n.replace(",", ".")) for n in _NUMBER.findall(text)}
    words = [m.group(0).lower() for m in _WORD.finditer(text.replace("-", " "))]
    for i, word in enumerate(words):
        if word in _TENS:
            unit = words[i + 1] if i + 1 < len(words) else ""
            found.add(str(_TENS[word] + int(_NUMBER_WORDS[unit])) if unit in _UNITS else str(_TENS[word]))
        elif word in _NUMBER_WORDS and not (i > 0 and words[i - 1] in _TENS and word in _UNITS):
            found.add(_NUMBER_WORDS[word])
    return found


def polarity(text: str) -> tuple[str | None, bool]:
    """(leading yes/no, whether the rest is negated)."""
    match = _YES_NO.match(text)
    lead = match.group(1).lower() if match else None
    rest = text[match.end():] if match else text
    return lead, bool(_NEGATION.search(rest))


def strip_citations(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", _CITATION.sub("", text)).strip()


def cited_numbers(text: str) -> list[int]:
    """Passage numbers cited in a text, in order of first appearance."""
    seen: list[int] = []
    for group in _CITATION.findall(text):
        for number in (int(n) for n in group.split(",")):
            if number not in seen:
                seen.append(number)
    return seen


@dataclass
class Claim:
    """One asserted sentence of an answer and what the check found for it."""

    text: str
    cited: list[int]
    supported: bool = False
    support: int | None = None  # the passage number that supports it
    evidence: str | None = None  # the passage sentence it matched best
    coverage: float = 0.0
    similarity: float = 0.0  # the verifier's score of the evidence (overlap rules: the embedding cosine)
    also: list[int] = field(default_factory=list)  # other passages that support it (verifier)
    reason: str = ""


@dataclass
class Unit:
    """One statement of a passage, with the content words and numbers of its headings;
    ``scope``: the lower-cased passage with its headings (where a claim's names must occur)."""

    passage: int
    text: str
    terms: set[str]
    numbers: set[str]
    polarity: tuple[str | None, bool]
    scope: str = ""


def stored_heading(hit: Hit) -> str:
    """Title and section path as stored, the title twice when the path starts with it: what claims and
    sentences are read under. ``Hit.heading`` (what customers and the model read) says it once; read
    that way, the extractive answers held every expected term for 17 instead of 19 of the 40 demo questions."""
    return " > ".join(part for part in (hit.title, hit.section) if part)


def context_of(hit: Hit) -> str:
    """The heading parts that state a topic; an FAQ's question heading asserts nothing, so it supports nothing."""
    parts = [p.strip() for p in stored_heading(hit).split(" > ")]
    return " > ".join(p for p in parts if p and not p.endswith("?"))


def units_of(passages: Sequence[Hit]) -> list[Unit]:
    """Each statement of each passage, with the passage's headings as context."""
    units: list[Unit] = []
    for number, hit in enumerate(passages, start=1):
        context = context_of(hit)
        context_terms, context_numbers = content_terms(context), numbers(context)
        scope = f"{stored_heading(hit)}\n{hit.text}".lower()
        for sentence in split_sentences(hit.text):
            if not sentence.endswith("?"):
                units.append(Unit(number, sentence, content_terms(sentence) | context_terms,
                                  numbers(sentence) | context_numbers, polarity(sentence), scope))
    return units


def asks_yes_or_no(question: str) -> bool:
    """Whether a question asks yes or no ("Is there ...?", "Do you ...?"), not what, when or how."""
    return bool(_ASKS_YES_NO.match(question))


def split_question_back(sentence: str) -> list[str]:
    """A question that opens with a statement run on in lower case, as (statement, question back); else unchanged."""
    if not sentence.rstrip().endswith("?"):
        return [sentence]
    if _QUESTION_OPENER.match(sentence):  # "Can I do anything else for you?" is one question
        return [sentence]
    for match in _QUESTION_BACK.finditer(sentence):
        if len(_WORD.findall(sentence[:match.start()])) >= 3:
            return [sentence[:match.start()].strip(), sentence[match.end():].strip()]
    return [sentence]


def is_pleasantry(sentence: str) -> bool:
    """An offer, thanks, or the agent's own process ("Let me check that for you."): nothing to verify."""
    return (len(_WORD.findall(sentence)) <= MAX_PLEASANTRY_WORDS and bool(_PLEASANTRY.match(sentence))
            and not _EVIDENCE.search(sentence))


def answer_claims(answer: str, question: str | None, method: Method = "verifier") -> tuple[list[str], list[Claim]]:
    """(the answer's sentences without citations, its claims). With ``method="overlap"``, the claims
    as the word-overlap rules saw them: every sentence with a content word or number that is not a question."""
    claims: list[Claim] = []
    kept: list[str] = []
    sentences = split_sentences(_LEAD_IN.sub("", answer.strip()))
    if method != "overlap":
        sentences = [part for sentence in sentences for part in _RUN_ON.split(sentence) if part.strip()]
        sentences = [part for sentence in sentences for part in split_question_back(sentence)]
    for sentence in sentences:
        cited = cited_numbers(sentence)
        plain = strip_citations(sentence).strip(" \"'")
        if not plain:
            continue
        kept.append(plain)
        if plain.endswith("?"):
            continue
        terms, values = content_terms(plain), numbers(plain)
        if method == "overlap":
            if terms or values:
                claims.append(Claim(plain, cited))
            continue
        if is_pleasantry(plain):
            continue
        if not values and sum(not t.isdigit() for t in terms) < MIN_CLAIM_WORDS:
            if question:  # "Yes, they do." asserts the question; the verifier reads the two together
                claims.append(Claim(plain, cited))
            continue
        claims.append(Claim(plain, cited))
    return kept, claims


def reading(claim: str, question: str | None) -> str:
    """The text the verifier reads for a claim: a bare "Yes, they do." together with the question it asserts."""
    if question and sum(not t.isdigit() for t in content_terms(claim)) < MIN_CLAIM_WORDS:
        return f"{claim} {question.strip()}"
    return claim
