"""Check that an answer says only what its cited passages say, and build a cited answer from them.

A language model given numbered passages may still answer from its own weights, cite the wrong
passage, copy an unrelated passage or echo the question; the embedded 135M model does all of it.
So every generated answer is checked before a customer sees it:

* It is split into sentences; each sentence that asserts something is a *claim* (questions and
  bare pleasantries are not). Its ``[n]`` markers are the passages it cites. A bare value
  ("4.95 EUR.") is a claim that fails (``MIN_CLAIM_WORDS``): it does not say what it is the value of.
* A claim is supported by a sentence of a cited passage (the passage's title and section count as
  that sentence's context) when

  - every number in the claim occurs there (a wrong price or deadline is the costliest error),
  - the two agree on negation ("we accept bitcoin" against "we do not accept cryptocurrency" is a
    contradiction however many words they share), and on a leading Yes/No when both have one,
  - the claim's content words (stemmed) are there, all but ``MAX_MISSING_SHARE`` of them,
  - and none of the missing words occurs in another passage that was shown: "express shipping
    costs 4.95 EUR" shares every word but one with "standard shipping costs 4.95 EUR", and the
    missing "express" belongs to the passage about express shipping, so the claim mixes two facts.

  Support is looked for in one sentence at a time: joining neighbours let "we issue a refund within
  3 business days" pass against "we inspect within 3 business days. We refund within 5 business
  days." Among the sentences that pass, the one closest in embedding space is the evidence.
  Embedding similarity alone is no verdict: the mixed claim above scores 0.82 against the
  standard-shipping sentence, as high as a faithful paraphrase.
* A claim without a citation is checked against every passage the model was shown, and the best
  supporting passage becomes its citation: small models rarely cite, and a correct uncited answer
  is worth keeping once it is traced to a source. A claim *with* a citation must be supported by a
  passage it cites; citing a passage that does not say it is an error.
* The answer must be about the question: some claim, read under the headings of the passage that
  supports it, has an embedding similarity of at least ``MIN_ANSWER_RELEVANCE`` to the question.
  A copied passage about exchanges, given as the answer to a question about express delivery, is
  supported sentence by sentence and still no answer. The headings matter: "No, we do not accept
  cryptocurrency." scores 0.44 against "Can I pay with bitcoin?" alone and 0.76 under its FAQ
  heading; the off-topic copies seen on the demo questions scored 0.26-0.36 with theirs.
* The answer is supported when it has at least one claim, every claim is supported and it is on topic.

What this cannot catch: a claim built from a passage's own words that changes its meaning
("you can still get the extended warranty", against a passage that makes it depend on
registration) and a wrong row of a table that holds every number. Those need a stronger judge
(an entailment model or a larger LLM); BENCHMARKS.md counts how often they got through.

An unsupported answer is replaced by ``extractive_answer``: the passage sentences most similar
to the question, each cited. Those sentences are copied, so the replacement cannot invent anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from assistant.embeddings import Embedder
from assistant.retrieval.bm25_index import tokenize
from assistant.retrieval.types import Hit

# Thresholds, measured on demo/questions.jsonl with `python bench/answers.py` (see BENCHMARKS.md).
MAX_MISSING_SHARE = 0.2  # of a claim's content words, this share (rounded down) may be absent from its evidence
MIN_ANSWER_RELEVANCE = 0.45  # cosine of the question and a claim under its evidence's headings
MIN_CLAIM_WORDS = 2  # content words besides numbers that a claim needs to say what its numbers are
EXTRA_SENTENCE_MARGIN = 0.10  # extractive answers add sentences scoring within this of the best
MAX_EXTRACTIVE_SENTENCES = 3
# Subtracted per passage rank: retrieval ranks passages better than a sentence's similarity alone
# ranks sentences, so a sentence of a lower passage must be clearly better to win. On the demo
# questions 0.05 found a sentence holding the expected answer for 20 of the 30 questions that have
# one among the passages, 0.005 (a mere tiebreak) for 16.
RANK_PENALTY = 0.05

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# Sentence ends, line breaks and list bullets; a decimal point ("14.90") is never followed by a space.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*\n+\s*|\s+-\s+(?=\S)")
_LEAD_IN = re.compile(
    r"^\s*(?:(?:the\s+)?answer(?:\s+to\s+(?:the|this|your)\s+question)?\s+is\s*:?|answer\s*:)\s*", re.IGNORECASE
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NEGATION = re.compile(r"\b(?:not|never|cannot|none|nothing|nor|no longer|neither)\b|n['’]t\b", re.IGNORECASE)
_YES_NO = re.compile(r"^\s*(yes|no)\b[,.!:;]?\s*", re.IGNORECASE)
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15", "twenty": "20", "thirty": "30",
}
# sklearn's English stop words, less words that carry facts in customer service ("next business day",
# "full refund", "send back"), plus the stubs that splitting contractions leaves ("don", "isn").
_STOP_WORDS = (ENGLISH_STOP_WORDS - {
    "next", "full", "back", "call", "bill", "fire", "find", "found", "part", "name", "system", "interest",
    "detail", "bottom", "top", "front", "side", "move", "empty", "fill", "thick", "thin", "amount", "first",
    "last", "keep", "take", "give", "put", "show", "free",
} - set(_NUMBER_WORDS)) | {"don", "doesn", "didn", "isn", "aren", "wasn", "weren", "won", "haven", "hasn", "hadn",
                           "shouldn", "wouldn", "couldn", "ll", "ve", "re", "yes", "ok", "sure"}


def split_sentences(text: str) -> list[str]:
    """Sentences and list items of a text; fragments under three words join the next one ("No." + its reason)."""
    parts = [_BULLET.sub("", p).strip() for p in _SENTENCE_BREAK.split(text)]
    sentences: list[str] = []
    carry = ""
    for part in parts:
        if not part:
            continue
        part = f"{carry} {part}".strip() if carry else part
        if len(_WORD.findall(part)) < 3:
            carry = part
            continue
        carry = ""
        sentences.append(part)
    if carry:
        if sentences and not carry.endswith((":", "?")):
            sentences[-1] = f"{sentences[-1]} {carry}"
        else:
            sentences.append(carry)
    return sentences


def content_terms(text: str) -> set[str]:
    """Stemmed content words, number words written as digits: what two statements must share to say the same."""
    words = [_NUMBER_WORDS.get(w, w) for w in (m.group(0).lower() for m in _WORD.finditer(text))]
    return set(tokenize(" ".join(w for w in words if w not in _STOP_WORDS)))


def numbers(text: str) -> set[str]:
    """Numbers as written, with decimal commas as points and number words as digits ("two" → "2")."""
    found = {n.replace(",", ".") for n in _NUMBER.findall(text)}
    found |= {_NUMBER_WORDS[w] for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w in _NUMBER_WORDS}
    return found


def _polarity(text: str) -> tuple[str | None, bool]:
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
    evidence: str | None = None  # the passage sentence(s) it matched best
    coverage: float = 0.0
    similarity: float = 0.0
    reason: str = ""


@dataclass
class SupportReport:
    """The verdict on a whole answer; ``text`` is the answer with lead-ins removed and every claim cited."""

    supported: bool
    text: str
    claims: list[Claim] = field(default_factory=list)
    reason: str = ""


@dataclass
class _Unit:
    passage: int
    text: str
    terms: set[str]
    numbers: set[str]
    polarity: tuple[str | None, bool]


def _heading(hit: Hit) -> str:
    return " > ".join(part for part in (hit.title, hit.section) if part)


def _context(hit: Hit) -> str:
    """The heading parts that state a topic; an FAQ's question heading asserts nothing, so it supports nothing."""
    parts = [p.strip() for p in _heading(hit).split(" > ")]
    return " > ".join(p for p in parts if p and not p.endswith("?"))


def _units(passages: Sequence[Hit]) -> list[_Unit]:
    """Each statement of each passage, with the passage's headings as context."""
    units: list[_Unit] = []
    for number, hit in enumerate(passages, start=1):
        context = _context(hit)
        context_terms, context_numbers = content_terms(context), numbers(context)
        for sentence in split_sentences(hit.text):
            if not sentence.endswith("?"):
                units.append(_Unit(number, sentence, content_terms(sentence) | context_terms,
                                   numbers(sentence) | context_numbers, _polarity(sentence)))
    return units


class Grounder:
    """Support checks and extractive answers with one embedding model (the retriever's)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def check(self, answer: str, passages: Sequence[Hit], question: str) -> SupportReport:
        """Whether ``answer`` is about ``question`` and every claim of it is supported by the passages it
        cites (numbered from 1)."""
        claims: list[Claim] = []
        kept: list[str] = []  # sentences of the cleaned answer, claims with their citations
        for sentence in split_sentences(_LEAD_IN.sub("", answer.strip())):
            cited = cited_numbers(sentence)
            plain = strip_citations(sentence).strip(" \"'")
            if not plain:
                continue
            kept.append(plain)
            if not plain.endswith("?") and (content_terms(plain) or numbers(plain)):
                claims.append(Claim(plain, cited))  # a question back or a bare "Sure." asserts nothing
        if not claims:
            return SupportReport(False, answer.strip(), claims, "the answer states nothing that can be checked")
        units = _units(passages)
        # Words, numbers and negation decide which sentences may support a claim; embeddings only pick
        # the closest among those, so only they (and their claims) are embedded: most sentences of
        # five passages never qualify, and embedding them was most of the check's time.
        terms_by_passage: dict[int, set[str]] = {}
        for unit in units:
            terms_by_passage.setdefault(unit.passage, set()).update(unit.terms)
        weighed = [(claim, found) for claim in claims
                   if (found := self._candidates(claim, units, terms_by_passage, len(passages)))]
        if weighed:
            needed = sorted({i for _, found in weighed for i, _ in found})
            vectors = self.embedder.encode([units[i].text for i in needed] + [c.text for c, _ in weighed], cache=True)
            unit_vectors = dict(zip(needed, vectors[: len(needed)]))
            for (claim, found), vector in zip(weighed, vectors[len(needed):]):
                # the first of equally similar candidates wins, as units come in passage order
                claim.similarity, index, claim.coverage = max(
                    ((float(unit_vectors[i] @ vector), i, coverage) for i, coverage in found), key=lambda c: c[0])
                unit = units[index]
                claim.supported, claim.support, claim.evidence = True, unit.passage, unit.text

        text = " ".join(self._with_citation(sentence, claims) for sentence in kept)
        unsupported = [c for c in claims if not c.supported]
        if unsupported:
            return SupportReport(False, text, claims, "; ".join(f"{c.text!r}: {c.reason}" for c in unsupported))
        topicality = self._topicality(question, claims, passages)
        if topicality < MIN_ANSWER_RELEVANCE:
            return SupportReport(False, text, claims, f"the answer is not about the question (similarity "
                                                      f"{topicality:.2f} < {MIN_ANSWER_RELEVANCE})")
        return SupportReport(True, text, claims)

    def _topicality(self, question: str, claims: list[Claim], passages: Sequence[Hit]) -> float:
        """The best similarity of the question to a supported claim read under its evidence's headings."""
        read = [f"{_heading(passages[c.support - 1])}: {c.text}" for c in claims if c.support is not None]
        vectors = self.embedder.encode([question] + read, cache=True)
        return float((vectors[1:] @ vectors[0]).max())

    @staticmethod
    def _with_citation(sentence: str, claims: list[Claim]) -> str:
        claim = next((c for c in claims if c.text == sentence), None)
        if claim is None or claim.support is None:
            return sentence
        numbers_ = claim.cited if claim.cited else [claim.support]
        marks = "".join(f"[{n}]" for n in numbers_)
        stem, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!" else (sentence, ".")
        return f"{stem} {marks}{end}"

    @staticmethod
    def _candidates(claim: Claim, units: list[_Unit], terms_by_passage: dict[int, set[str]],
                    n_passages: int) -> list[tuple[int, float]]:
        """The units (index, share of the claim's words they hold) that may support ``claim`` by its
        numbers, polarity and words; when there are none, ``claim.reason`` says why.
        ``terms_by_passage``: every passage's content words, to tell a claim that mixes two passages."""
        invalid = [n for n in claim.cited if not 1 <= n <= n_passages]
        if invalid:
            claim.reason = f"cites passage {invalid[0]}, which was not given"
            return []
        allowed = set(claim.cited) if claim.cited else set(range(1, n_passages + 1))
        terms, claim_numbers, polarity = content_terms(claim.text), numbers(claim.text), _polarity(claim.text)
        if sum(not t.isdigit() for t in terms) < MIN_CLAIM_WORDS:
            claim.reason = "too short to check: it does not say what it is about"
            return []
        may_miss = int(MAX_MISSING_SHARE * len(terms))
        found: list[tuple[int, float]] = []
        reasons: list[str] = []
        for index, unit in enumerate(units):
            if unit.passage not in allowed:
                continue
            missing_numbers = claim_numbers - unit.numbers
            if missing_numbers:
                reasons.append(f"{sorted(missing_numbers)[0]} is not in passage {unit.passage}")
                continue
            if polarity[1] != unit.polarity[1] or (polarity[0] and unit.polarity[0] and polarity[0] != unit.polarity[0]):
                reasons.append(f"contradicts passage {unit.passage}")
                continue
            missing = terms - unit.terms
            if len(missing) > may_miss:
                continue
            elsewhere = [t for t in missing if any(t in other for n, other in terms_by_passage.items() if n != unit.passage)]
            if elsewhere:
                reasons.append(f"mixes in {elsewhere[0]!r} from another passage")
                continue
            found.append((index, 1 - len(missing) / len(terms)))
        if not found:
            where = f"passage {', '.join(map(str, sorted(allowed)))}" if claim.cited else "any passage"
            claim.reason = reasons[0] if reasons and len(set(reasons)) == 1 else f"not stated in {where}"
        return found

    def extractive_answer(self, question: str, passages: Sequence[Hit]) -> tuple[str, list[int]]:
        """The 1–3 passage sentences that best answer ``question``, each followed by its ``[n]``.

        Sentences are scored by embedding similarity to the question, heading included (a row of a
        price table means little without "Express shipping" above it), less ``RANK_PENALTY`` per
        passage rank. Sentences within ``EXTRA_SENTENCE_MARGIN`` of the best join it, in passage
        order: the sentence most similar to a question is often the one that restates it, and the
        answer is the next best.
        """
        candidates: list[tuple[int, int, str]] = []  # passage number, position, sentence
        for number, hit in enumerate(passages, start=1):
            for position, sentence in enumerate(split_sentences(hit.text)):
                if not sentence.endswith("?") and content_terms(sentence):
                    candidates.append((number, position, sentence))
        if not candidates:
            return "", []
        headings = {n: _heading(hit) for n, hit in enumerate(passages, start=1)}
        vectors = self.embedder.encode([question] + [f"{headings[n]}: {s}" if headings[n] else s for n, _, s in candidates],
                                      cache=True)
        scores = vectors[1:] @ vectors[0] - RANK_PENALTY * np.asarray([n - 1 for n, _, _ in candidates])
        order = np.argsort(-scores, kind="stable")
        chosen = [i for i in order[:MAX_EXTRACTIVE_SENTENCES] if scores[i] >= scores[order[0]] - EXTRA_SENTENCE_MARGIN]
        chosen.sort(key=lambda i: candidates[i][:2])
        parts = []
        for i in chosen:
            number, _, sentence = candidates[i]
            stem, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!" else (sentence, ".")
            parts.append(f"{stem} [{number}]{end}")
        return " ".join(parts), cited_numbers(" ".join(parts))
