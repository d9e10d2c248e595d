"""Check that an answer says only what its cited passages say, and build a cited answer from them.

A language model given numbered passages may still answer from its own weights, cite the wrong
passage, copy an unrelated passage or echo the question; the embedded 135M model does all of it.
So every generated answer is checked before a customer sees it. The check is calibrated on what
good answers look like as well as bad ones: human agents' replies grounded in one FAQ snippet
(DSTC9, BENCHMARKS.md "Support check") must pass given their snippet and fail given another
entity's snippets.

* The answer is split into sentences. Questions back, offers and pleasantries ("Would you like me
  to book it?", "Let me know if you need anything else.") are not claims; every other sentence is.
  A bare "Yes, they do." says something only about the question, so it is checked read together
  with the question, against the passage the question asks about only (any other sentence that
  seems to support it says something else); a bare value ("4.95 EUR.") fails (``MIN_CLAIM_WORDS``):
  it does not say what it is the value of. ``[n]`` markers are the passages a claim cites.
* A claim is supported by a sentence of a cited passage (its headings as context) when

  - every number in the claim occurs there (a wrong price or deadline is the costliest error, so
    no learned score may outvote this rule),
  - no word of the claim is a heading word of another shown passage missing from this one:
    "express shipping costs 4.95 EUR" takes "express" from the passage about express delivery and
    4.95 from the one about standard delivery,
  - and the learned verifier (``verifier``: MiniLM features and a logistic regression trained on
    DSTC9) gives the pair at least ``min_score`` (``HELPMATE_SUPPORT_MIN_SCORE``). It reads
    paraphrases, synonyms and partial answers as support, and a flipped yes/no, a changed
    negation or another entity's name as none.

  Support is looked for in one sentence at a time: joining neighbours let "we issue a refund within
  3 business days" pass against "we inspect within 3 business days. We refund within 5 business
  days."
* A claim without a citation is checked against every passage the model was shown, and the best
  supporting passage becomes its citation: small models rarely cite, and a correct uncited answer
  is worth keeping once it is traced to a source. A claim *with* a citation must be supported by a
  passage it cites; citing a passage that does not say it is an error.
* When the question is known, the answer must be about it: some claim, read under the headings of
  a passage that supports it, has an embedding similarity of at least ``MIN_ANSWER_RELEVANCE``
  to the question. A copied passage about exchanges, given as the answer to a question about
  express delivery, is supported sentence by sentence and still no answer.
* The answer is supported when it has at least one claim, every claim is supported and it is on topic.

What this cannot catch: a wrong row of a table that holds every number ("inside leg 76 cm" for the
wrong size), and claims the verifier scores wrongly; BENCHMARKS.md measures both error rates.
``method="overlap"`` runs the word-overlap rules (``overlap``) instead: the assistant's default
(``HELPMATE_SUPPORT_CHECK``), because on the demo questions the verifier let wrong answers of the
embedded 135M model through (BENCHMARKS.md); ``helpmate eval support`` prints both.

An unsupported answer is replaced by ``extractive_answer``: the passage sentences most similar
to the question, each cited. Those sentences are copied, so the replacement cannot invent anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from assistant.answering.claims import (  # noqa: F401  (the text helpers are imported from here by other modules)
    MIN_CLAIM_WORDS, Claim, Method, Unit, answer_claims, reading, cited_numbers, content_terms, numbers, polarity, split_sentences,
    strip_citations, units_of, stored_heading, context_of,
)
from assistant.config import Settings
from assistant.embeddings import Embedder
from assistant.retrieval.types import Hit

SUPPORT_MIN_SCORE = Settings.model_fields["support_min_score"].default
MIN_ANSWER_RELEVANCE = 0.45  # cosine of the question and a claim under its evidence's headings
# A claim this close (cosine) to an FAQ passage's question restates it, and must agree with the
# Yes/No its answer opens with (``Grounder._contradicted``).
CONTRADICTION_SIMILARITY = 0.5
EXTRA_SENTENCE_MARGIN = 0.10  # extractive answers add sentences scoring within this of the best
MAX_EXTRACTIVE_SENTENCES = 3
# Subtracted per passage rank: retrieval ranks passages better than a sentence's similarity alone
# ranks sentences, so a sentence of a lower passage must be clearly better to win. On the demo
# questions 0.05 found a sentence holding the expected answer for 20 of the 30 questions that have
# one among the passages, 0.005 (a mere tiebreak) for 16.
RANK_PENALTY = 0.05
# How a list item ends where a sentence would end: "...;", "...:", "..., or" (cut before a citation).
_LIST_ITEM_TAIL = re.compile(r"(?:[;,:]|[;,]?\s+(?:and|or))\s*$")


@dataclass
class SupportReport:
    """The verdict on a whole answer; ``text`` is the answer with lead-ins removed and every claim cited."""

    supported: bool
    text: str
    claims: list[Claim] = field(default_factory=list)
    reason: str = ""



class Grounder:
    """Support checks and extractive answers with one embedding model (the retriever's).

    ``min_score``: the verifier's score a claim's evidence needs (``HELPMATE_SUPPORT_MIN_SCORE``);
    ``method``: ``"verifier"`` (the default) or ``"overlap"`` (the earlier word rules, to compare).
    """

    def __init__(self, embedder: Embedder, min_score: float | None = None, method: Method = "verifier", verifier=None):
        self.embedder = embedder
        self.min_score = SUPPORT_MIN_SCORE if min_score is None else min_score
        self.method = method
        self._verifier = verifier

    @property
    def verifier(self):
        if self._verifier is None:
            from assistant.answering.verifier import get_verifier

            self._verifier = get_verifier(self.embedder)
        return self._verifier

    def check(self, answer: str, passages: Sequence[Hit], question: str | None) -> SupportReport:
        """Whether ``answer`` is about ``question`` (when given) and every claim of it is supported by
        the passages it cites (numbered from 1)."""
        kept, claims = answer_claims(answer, question, self.method)
        if not claims:
            return SupportReport(False, answer.strip(), claims, "the answer states nothing that can be checked")
        units = units_of(passages)
        if self.method == "overlap":
            self._overlap(claims, units, len(passages))
        else:
            self._verify(claims, units, passages, question or "")
        text = " ".join(self._with_citation(sentence, claims) for sentence in kept)
        unsupported = [c for c in claims if not c.supported]
        if unsupported:
            return SupportReport(False, text, claims, "; ".join(f"{c.text!r}: {c.reason}" for c in unsupported))
        if question:
            topicality = self._topicality(question, claims, passages)
            if topicality < MIN_ANSWER_RELEVANCE:
                return SupportReport(False, text, claims, f"the answer is not about the question (similarity "
                                                          f"{topicality:.2f} < {MIN_ANSWER_RELEVANCE})")
        return SupportReport(True, text, claims)

    @staticmethod
    def _allowed(claim: Claim, n_passages: int) -> set[int]:
        """The passages that may support ``claim``: those it cites, else all; empty (with a reason) when it
        cites a passage that was not given."""
        invalid = [n for n in claim.cited if not 1 <= n <= n_passages]
        if invalid:
            claim.reason = f"cites passage {invalid[0]}, which was not given"
            return set()
        return set(claim.cited) if claim.cited else set(range(1, n_passages + 1))

    def _candidates(self, claim: Claim, units: list[Unit], headings: dict[int, set[str]],
                    passage_terms: dict[int, set[str]]) -> list[int]:
        """Units of allowed passages that hold every number of the claim and take no heading word of
        another passage (``headings``: each passage's heading words; ``passage_terms``: all its words);
        when there are none, ``claim.reason`` says why."""
        allowed = self._allowed(claim, len(headings))
        if not allowed:
            return []
        terms, values = content_terms(claim.text), numbers(claim.text)
        if values and sum(not t.isdigit() for t in terms) < MIN_CLAIM_WORDS:
            claim.reason = "too short to check: it does not say what it is about"
            return []
        found, reasons = [], []
        for index, unit in enumerate(units):
            if unit.passage not in allowed:
                continue
            missing = values - unit.numbers
            if missing:
                reasons.append(f"{sorted(missing)[0]} is not in passage {unit.passage}")
                continue
            foreign = [t for t in terms - passage_terms[unit.passage]
                       if any(t in words for n, words in headings.items() if n != unit.passage)]
            if foreign:
                reasons.append(f"mixes in {foreign[0]!r} from another passage")
                continue
            found.append(index)
        if not found:
            where = f"passage {', '.join(map(str, sorted(allowed)))}" if claim.cited else "any passage"
            claim.reason = reasons[0] if reasons and len(set(reasons)) == 1 else f"not stated in {where}"
        return found

    def _verify(self, claims: list[Claim], units: list[Unit], passages: Sequence[Hit], question: str) -> None:
        """Score each claim against its candidate units with the verifier; the best unit is its evidence."""
        from assistant.answering.verifier import Statement, pair_features

        headings = {n: content_terms(context_of(hit)) for n, hit in enumerate(passages, start=1)}
        passage_terms = {n: content_terms(f"{stored_heading(hit)}\n{hit.text}") for n, hit in enumerate(passages, start=1)}
        weighed = [(claim, found) for claim in claims
                   if (found := self._candidates(claim, units, headings, passage_terms))]
        if not weighed:
            return
        readings = [reading(claim.text, question) for claim, _ in weighed]
        if any(text != claim.text for text, (claim, _) in zip(readings, weighed)):
            asked = self._asked_passage(question, passages)
            kept = []
            for text, (claim, found) in zip(readings, weighed):
                if text != claim.text:  # a bare yes or no, read with the question
                    found = [i for i in found if units[i].passage == asked]
                    if not found:
                        claim.reason = (f"a bare yes or no asserts the question, and passage {asked}, which it asks "
                                        "about, does not say it")
                        continue
                kept.append((text, (claim, found)))
            if not kept:
                return
            readings, weighed = [text for text, _ in kept], [pair for _, pair in kept]
        # Only candidate units (and their claims) are embedded: most sentences of five passages hold
        # a number a claim lacks, and embedding them was most of the check's time.
        needed = sorted({i for _, found in weighed for i in found})
        vectors = self.embedder.encode([units[i].text for i in needed] + readings, cache=True)
        sides = {i: Statement(units[i].text, v, units[i].terms, units[i].scope) for i, v in zip(needed, vectors)}
        rows, owners = [], []
        for k, (text, vector) in enumerate(zip(readings, vectors[len(needed):])):
            side = Statement(text, vector, content_terms(text), question=question)
            rows += [pair_features(side, sides[i]) for i in weighed[k][1]]
            owners += [(k, i) for i in weighed[k][1]]
        scores = self.verifier.scores(np.stack(rows))
        vetoed = self._contradicted(readings, vectors[len(needed):], units, passages)
        best: dict[int, tuple[float, int]] = {}
        for (k, i), score in zip(owners, scores):
            if units[i].passage in vetoed[k]:
                continue
            if k not in best or score > best[k][0]:  # the first of equal scores wins: units come in passage order
                best[k] = (float(score), i)
        for k, (claim, _) in enumerate(weighed):
            if k not in best:
                claim.reason = f"contradicts passage {min(vetoed[k])}"
                continue
            score, index = best[k]
            unit = units[index]
            claim.similarity, claim.evidence = score, unit.text
            claim.coverage = len(content_terms(claim.text) & unit.terms) / max(1, len(content_terms(claim.text)))
            claim.supported = score >= self.min_score
            if claim.supported:
                claim.support = unit.passage
                claim.also = sorted({units[i].passage for (j, i), s in zip(owners, scores)
                                     if j == k and s >= self.min_score and units[i].passage not in vetoed[k]} - {unit.passage})
            else:
                claim.reason = f"no passage sentence supports it (best verifier score {score:.2f} < {self.min_score:.2f})"

    def _asked_passage(self, question: str, passages: Sequence[Hit]) -> int:
        """The passage the question asks about (closest under its headings): the only evidence for a bare
        "Yes, they do.", which asserts the question itself; any other sentence supporting it says something else."""
        vectors = self.embedder.encode([question] + [f"{stored_heading(hit)}\n{hit.text}" for hit in passages], cache=True)
        return int(np.argmax(vectors[1:] @ vectors[0])) + 1

    def _contradicted(self, readings: list[str], vectors: np.ndarray, units: list[Unit],
                      passages: Sequence[Hit]) -> list[set[int]]:
        """Per claim, the FAQ passages that answer a question like the claim with the opposite Yes/No.

        An FAQ entry whose answer opens with "No," ("Can I pay with bitcoin?" / "No, we do not accept
        cryptocurrency.") supports no claim that restates its question without a negation ("You can
        pay with bitcoin."), from any of its sentences: the learned verifier alone let "We accept
        cards." beside it do so. A claim restates the question when their cosine is at least
        ``CONTRADICTION_SIMILARITY``. Human agents rephrase a "No" in many ways but keep it negative."""
        from assistant.answering.verifier import NEGATION

        answered = {}  # passage -> (its FAQ question, whether its answer opens with No)
        for unit in units:
            hit = passages[unit.passage - 1]
            if unit.passage not in answered and (hit.section or "").strip().endswith("?") and unit.polarity[0]:
                answered[unit.passage] = (hit.section.strip(), unit.polarity[0] == "no")
        if not answered:
            return [set() for _ in readings]
        numbers_ = sorted(answered)
        asked = self.embedder.encode([answered[n][0] for n in numbers_], cache=True)
        vetoed = []
        for text, vector in zip(readings, vectors):
            negated = bool(NEGATION.search(text))
            vetoed.append({n for n, similarity in zip(numbers_, asked @ vector)
                           if similarity >= CONTRADICTION_SIMILARITY and answered[n][1] != negated})
        return vetoed

    def _overlap(self, claims: list[Claim], units: list[Unit], n_passages: int) -> None:
        """The word-overlap rules (``overlap``); the candidate closest in embedding space is the evidence."""
        from assistant.answering.overlap import overlap_candidates

        terms_by_passage: dict[int, set[str]] = {}
        for unit in units:
            terms_by_passage.setdefault(unit.passage, set()).update(unit.terms)
        weighed = [(claim, found) for claim in claims if (allowed := self._allowed(claim, n_passages))
                   and (found := overlap_candidates(claim, units, terms_by_passage, allowed))]
        if not weighed:
            return
        needed = sorted({i for _, found in weighed for i, _ in found})
        vectors = self.embedder.encode([units[i].text for i in needed] + [c.text for c, _ in weighed], cache=True)
        unit_vectors = dict(zip(needed, vectors[: len(needed)]))
        for (claim, found), vector in zip(weighed, vectors[len(needed):]):
            claim.similarity, index, claim.coverage = max(
                ((float(unit_vectors[i] @ vector), i, coverage) for i, coverage in found), key=lambda c: c[0])
            unit = units[index]
            claim.supported, claim.support, claim.evidence = True, unit.passage, unit.text

    def _topicality(self, question: str, claims: list[Claim], passages: Sequence[Hit]) -> float:
        """The best similarity of the question to a supported claim read under the headings of a passage
        that supports it (its best evidence or another above the threshold: "you may cancel up to 24
        hours" is supported by the FAQ entries on changes and on cancelling, and answers the latter)."""
        read = [f"{stored_heading(passages[n - 1])}: {c.text}" for c in claims if c.support is not None for n in [c.support, *c.also]]
        vectors = self.embedder.encode([question] + read, cache=True)
        return float((vectors[1:] @ vectors[0]).max())

    @staticmethod
    def _with_citation(sentence: str, claims: list[Claim]) -> str:
        claim = next((c for c in claims if c.text == sentence), None)
        if claim is None or claim.support is None:
            return sentence
        numbers_ = claim.cited if claim.cited else [claim.support]
        return _cited(sentence, "".join(f"[{n}]" for n in numbers_))

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
        headings = {n: stored_heading(hit) for n, hit in enumerate(passages, start=1)}
        vectors = self.embedder.encode([question] + [f"{headings[n]}: {s}" if headings[n] else s for n, _, s in candidates],
                                      cache=True)
        scores = vectors[1:] @ vectors[0] - RANK_PENALTY * np.asarray([n - 1 for n, _, _ in candidates])
        order = np.argsort(-scores, kind="stable")
        chosen = [i for i in order[:MAX_EXTRACTIVE_SENTENCES] if scores[i] >= scores[order[0]] - EXTRA_SENTENCE_MARGIN]
        chosen.sort(key=lambda i: candidates[i][:2])
        parts = []
        for i in chosen:
            number, _, sentence = candidates[i]
            first = sentence.split(maxsplit=1)[0]
            if first.islower():  # a list item ("poles bent or broken by storms ...") read as a sentence
                sentence = sentence[0].upper() + sentence[1:]
            parts.append(_cited(sentence, f"[{number}]"))
        return " ".join(parts), cited_numbers(" ".join(parts))


def _cited(sentence: str, marks: str) -> str:
    """``sentence`` with citation ``marks`` before its full stop; a list item's closing ";", ":" or ", or"
    gives way to the stop ("... falling on the tent; [1]." would read as a broken sentence)."""
    stem = _LIST_ITEM_TAIL.sub("", sentence.rstrip())
    if stem[-1] in ".!":
        return f"{stem[:-1]} {marks}{stem[-1]}"
    return f"{stem} {marks}."
