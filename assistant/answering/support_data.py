"""Labelled answers for calibrating the support check: a team's own JSONL file, or DSTC9's human replies.

A support check is only as good as its two error rates: how many good answers it throws away and
how many bad ones it lets through. Both are measured on labelled cases (``SupportCase``): the
passages an answer was written from, the answer, and whether it should be accepted.

**A team's own file** (``read_cases``), one JSON object per line::

    {"passages": ["Express shipping costs 14.90 EUR.", {"text": "...", "title": "Shipping", "section": "Express"}],
     "answer": "Express delivery is 14.90 EUR [1].", "accept": true, "question": "How much is express?"}

``passages`` are strings or objects with ``text`` and optional ``title``/``section`` (the headings
Helpmate keeps with every chunk); ``question`` is optional (without it the check does not ask
whether the answer is on topic).

**DSTC9 track 1 test split** (``dstc9_cases``; Apache-2.0, ``shared/datasets/dstc9_grounded_test``):
1,981 human agents' replies, each grounded in one FAQ snippet of a hotel, restaurant, attraction,
or of the taxi or train service. Each snippet becomes a passage as ``helpmate ingest`` stores an
FAQ entry (text "question\\nanswer", the FAQ question as section) under its entity's name as title,
and each reply gives two cases:

* ``own``: the reply given its own snippet among the three other snippets of the same entity most
  similar to it (most content words in common: what a search would put beside it), the snippet at
  a seeded random position: must be accepted.
* ``other``: the reply given the four snippets most similar to its own of another entity of the
  same domain, chosen at random (seeded) among those of the same part: must be rejected. Taxi and
  train have one domain-wide entity, so their replies have no such case.

The question is the snippet's FAQ question in both (the customer asked about this entity; in
``other`` retrieval brought the wrong one). An ``other`` case is ``named`` when the reply or the
question holds a distinctive word of the entity's name (``names_entity``): without one ("The Wi-Fi
is free to access!" given another hotel whose Wi-Fi is free too), nothing in the texts the check
reads says which entity the reply is about, and reports give both groups' rates.

**Split rule** (``dstc9_part``): a hotel, restaurant or attraction goes wholly to one part, the
``fit`` part (verifier training) or the ``held_out`` part (every figure reported), by the parity of
the first byte of SHA-256 of ``"domain/entity_id"``; the domain-wide taxi and train FAQs split per
snippet (``"domain/*/doc_id"``), so the replies grounded in one snippet stay together. No entity,
snippet or reply of the held-out part is seen by training.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from assistant.retrieval.types import Hit

Part = Literal["fit", "held_out", "all"]
DSTC9_DOMAIN_WIDE = ("taxi", "train")
DSTC9_OTHERS = 3  # snippets of the same entity beside the reply's own
DSTC9_PASSAGES = 4  # passages of another entity in the "other" case
_NAME_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class SupportCase:
    """Passages, an answer, and whether a good check accepts it (``condition`` groups cases in reports)."""

    passages: list[Hit]
    answer: str
    accept: bool
    question: str | None = None
    condition: str = "file"
    grounding: int | None = None  # DSTC9 "own" cases: the number of the passage the reply was written from
    entity: str | None = None  # DSTC9: the name of the entity the reply is about
    named: bool | None = None  # DSTC9: whether the reply or the question names that entity (``names_entity``)


@dataclass(frozen=True)
class Snippet:
    """One DSTC9 FAQ entry: the FAQ question (``title``) and its answer (``body``)."""

    domain: str
    entity_id: str
    doc_id: str
    entity_name: str
    title: str
    body: str

    def hit(self, number: int) -> Hit:
        """The snippet as a retrieved passage, stored as ``helpmate ingest`` stores an FAQ entry."""
        return Hit(number, number, f"{self.title}\n{self.body}", f"dstc9/{self.domain}/{self.entity_id}/{self.doc_id}",
                   self.entity_name, self.title, None, 1.0, 1.0)


@dataclass(frozen=True)
class Reply:
    """A human agent's reply and the snippet it is grounded in."""

    text: str
    snippet: Snippet


def passage_hits(passages: Iterable[str | dict[str, Any]]) -> list[Hit]:
    """Passages of a labelled file as numbered hits."""
    hits = []
    for number, item in enumerate(passages, start=1):
        item = {"text": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError("a passage is a string or an object with a text")
        hits.append(Hit(number, number, item["text"], str(item.get("source") or f"passage-{number}"), item.get("title"),
                        item.get("section"), None, 1.0, 1.0))
    return hits


def read_cases(path: Path) -> list[SupportCase]:
    """A team's labelled answers (format in the module docstring); errors name the line."""
    cases = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row.get("answer"), str) or not isinstance(row.get("accept"), bool):
                raise ValueError("needs an answer (string) and accept (true or false)")
            if not isinstance(row.get("passages"), list) or not row["passages"]:
                raise ValueError("needs passages (a non-empty list)")
            cases.append(SupportCase(passage_hits(row["passages"]), row["answer"], row["accept"], row.get("question"),
                                     str(row.get("condition") or ("accept" if row["accept"] else "reject"))))
        except (ValueError, AttributeError) as error:
            raise ValueError(f"{path}, line {number}: {error}") from None
    if not cases:
        raise ValueError(f"{path} holds no labelled answers")
    return cases


def dstc9_part(snippet: Snippet) -> Literal["fit", "held_out"]:
    """Which part a reply grounded in ``snippet`` belongs to (the split rule in the module docstring)."""
    key = f"{snippet.domain}/{snippet.entity_id}"
    if snippet.domain in DSTC9_DOMAIN_WIDE:
        key += f"/{snippet.doc_id}"
    return "fit" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "held_out"


def load_dstc9(folder: Path) -> tuple[list[Reply], dict[tuple[str, str], list[Snippet]]]:
    """Replies that need the FAQ (``target: true``) and every entity's snippets."""
    knowledge = json.loads((Path(folder) / "knowledge.json").read_text(encoding="utf-8"))
    labels = json.loads((Path(folder) / "labels.json").read_text(encoding="utf-8"))
    entities: dict[tuple[str, str], list[Snippet]] = {}
    for domain, by_entity in knowledge.items():
        for entity_id, entity in by_entity.items():
            name = entity.get("name") or domain.capitalize()
            entities[(domain, entity_id)] = [Snippet(domain, entity_id, doc_id, name, doc["title"].strip(), doc["body"].strip())
                                             for doc_id, doc in entity["docs"].items()]
    by_key = {(s.domain, s.entity_id, s.doc_id): s for snippets in entities.values() for s in snippets}
    replies = []
    for label in labels:
        if label.get("target") and label.get("knowledge") and label.get("response"):
            known = label["knowledge"][0]
            replies.append(Reply(label["response"].strip(), by_key[(known["domain"], str(known["entity_id"]), str(known["doc_id"]))]))
    return replies, entities


def _distinctive_words(entities: dict[tuple[str, str], list[Snippet]]) -> dict[str, set[str]]:
    """Per entity name, its words that name it: not in more than 2% of all names ("hotel", "the", "house")."""
    names = {snippets[0].entity_name for snippets in entities.values() if snippets}
    words = {name: set(_NAME_WORD.findall(name.lower())) for name in names}
    frequency: dict[str, int] = {}
    for found in words.values():
        for word in found:
            frequency[word] = frequency.get(word, 0) + 1
    return {name: {w for w in found if frequency[w] <= max(1, 0.02 * len(names))} for name, found in words.items()}


def names_entity(text: str, distinctive: set[str]) -> bool:
    """Whether ``text`` holds one of an entity's distinctive name words: only then can a reader of
    passages about another entity tell that the text is not about that one."""
    found = set(_NAME_WORD.findall(text.lower()))
    return bool(found & distinctive)


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of the DSTC9 files, for metadata that says exactly what was used."""
    return {name: hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest() for name in ("knowledge.json", "labels.json")}


def _nearest(snippet: Snippet, pool: list[Snippet], terms: dict[Snippet, set[str]], count: int) -> list[Snippet]:
    """The ``count`` snippets of ``pool`` (``snippet`` excluded) sharing most of ``snippet``'s content words
    (Jaccard; ties in document order), most similar first: the neighbours a keyword search would return."""
    pool = [s for s in pool if s != snippet]
    own = terms[snippet]
    scores = [len(own & terms[s]) / max(1, len(own | terms[s])) for s in pool]
    return [pool[i] for i in sorted(range(len(pool)), key=lambda i: -scores[i])[:count]]


def dstc9_cases(folder: Path, part: Part = "held_out", seed: int = 0, limit: int | None = None) -> list[SupportCase]:
    """The ``own`` (accept) and ``other`` (reject) cases of one part (module docstring); ``limit``
    takes that many replies of the part, chosen with ``seed``, for quick runs."""
    replies, entities = load_dstc9(folder)
    chosen = [r for r in replies if part == "all" or dstc9_part(r.snippet) == part]
    rng = random.Random(seed)
    if limit is not None and limit < len(chosen):
        chosen = [chosen[i] for i in sorted(rng.sample(range(len(chosen)), limit))]
    needed = {s for r in chosen for s in entities[(r.snippet.domain, r.snippet.entity_id)]}
    by_domain: dict[str, list[tuple[str, str]]] = {}
    for (domain, entity_id), snippets in entities.items():
        if domain not in DSTC9_DOMAIN_WIDE and snippets and (part == "all" or dstc9_part(snippets[0]) == part):
            by_domain.setdefault(domain, []).append((domain, entity_id))
    others: dict[Reply, tuple[str, str]] = {}
    for reply in chosen:
        if reply.snippet.domain in DSTC9_DOMAIN_WIDE:
            continue
        own = (reply.snippet.domain, reply.snippet.entity_id)
        candidates = [key for key in by_domain[reply.snippet.domain] if key != own]
        if candidates:
            others[reply] = candidates[rng.randrange(len(candidates))]
            needed.update(entities[others[reply]])
    from assistant.answering.claims import content_terms

    terms = {s: content_terms(f"{s.title} {s.body}") for s in needed}
    distinctive = _distinctive_words(entities)
    cases = []
    for reply in chosen:
        snippet = reply.snippet
        own = _nearest(snippet, entities[(snippet.domain, snippet.entity_id)], terms, DSTC9_OTHERS)
        own.insert(rng.randrange(len(own) + 1), snippet)
        cases.append(SupportCase([s.hit(n) for n, s in enumerate(own, start=1)], reply.text, True, snippet.title, "own",
                                 own.index(snippet) + 1, snippet.entity_name))
        if reply in others:
            wrong = _nearest(snippet, entities[others[reply]], terms, DSTC9_PASSAGES)
            named = names_entity(f"{reply.text} {snippet.title}", distinctive.get(snippet.entity_name, set()))
            cases.append(SupportCase([s.hit(n) for n, s in enumerate(wrong, start=1)], reply.text, False, snippet.title,
                                     "other", None, snippet.entity_name, named))
    return cases
