"""Training and held-out examples for the grounded-answer adapter, in Helpmate's own prompt format.

Every example is what the assistant sends the model (``assistant.answering.prompts.build_messages``:
the system instructions, numbered passages, the question) and the answer it should write: the
``[n]`` of the passage that answers, then one or two sentences from it, or ``"I don't know."`` (the
refusal the prompt asks for, which the assistant turns into its offer of a person) when no passage
answers. The adapter learns the format the support check judges, on data nobody measured is in.

The citation comes first on purpose. Greedy decoding takes the most likely first token, and every
refusal starts with the same one ("I") while answers start with whatever word their sentence
starts with; with the citation at the end, a checkpoint after 50 of 150 steps put more probability
on "I" than on any single opening word and refused all 24 held-out and 12 demo questions it was
tried on, answerable or not. With ``[`` opening every answer, the first token weighs answering as a
whole against refusing, the next one picks the passage, and the sentence is copied from it. The
support check reads a citation wherever it stands and moves it to the end of each claim.

**SQuAD 2.0 dev** (CC BY-SA 4.0): one paragraph is one help-center article. The passage shown is
a window of two to four sentences of it (help-center chunks are about that long, and short
examples let an hour of CPU see about two thousand of them); the window holds the sentence with the
answer, or for an unanswerable question the sentence with its plausible (wrong) answer. Distractors
are windows of other paragraphs of the same article (same topic, as retrieval would find) that
contain none of the answer texts. Three kinds of example:

* ``answer``: the answering window among distractors; target: its sentence(s) holding the answer
  span, cited;
* ``impossible``: a SQuAD unanswerable question with its paragraph's window among distractors
  (near-topic text that does not answer it): ``"I don't know."``;
* ``removed``: an answerable question with only the distractors (retrieval found nothing that
  answers): ``"I don't know."``.

**DSTC9 track 1 test** (Apache-2.0): human agents' replies grounded in one FAQ snippet. A snippet
is a passage as ``helpmate ingest`` stores an FAQ entry (the entity's name as title, the FAQ
question as section, text "question\\nanswer"); the question is the FAQ question (the dialogues are
not in the data set). ``answer``: the snippet among other snippets of the same entity (those sharing
most words with it), target: the reply's statements with the citation, its questions back
("Anything else?") left out; ``removed``: other snippets of the entity that share no content word
with the question: ``"I don't know."``. Replies from spoken dialogues (``sf_spoken``: lower-case
transcripts with fillers) are not used.

**Split rules** (``squad_part``, ``dstc9_part``), fixed functions of the data so they hold on every
machine: a SQuAD article is held out when the first byte of SHA-256 of its title is divisible by 5
(7 of 35 articles); a DSTC9 entity when that byte of ``"domain/entity_id"`` is odd (taxi and train
FAQs per snippet), the rule ``assistant.answering.support_data`` uses for the support check, so the
verifier and the adapter are measured on the same held-out entities. Nothing of a held-out article
or entity (question, passage or distractor) is in a training example.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from assistant.answering.prompts import build_messages
from assistant.retrieval.types import Hit

REFUSAL = "I don't know."
Part = Literal["train", "held_out"]
Kind = Literal["answer", "impossible", "removed"]
MAX_TARGET_WORDS = 45  # longer answer sentences are not used as targets (rambling is what the adapter should unlearn)
WINDOW_SENTENCES = (2, 4)  # sentences of a SQuAD paragraph shown as one passage (fewest, most)
PASSAGE_COUNTS = (1, 2, 3, 4)  # passages per prompt; the assistant sends up to HELPMATE_ANSWER_PASSAGES (4)
PASSAGE_WEIGHTS = (1, 3, 3, 3)
# Where the answering passage stands among n: retrieval ranks it first most of the time (hybrid search: MRR@10 0.70
# on SciFact, BENCHMARKS.md), and a model that learned that the order carries no information would throw the
# ranking away (trained with the position uniform, a checkpoint at step 60 of 150 cited the expected document first
# for 2 of the first 12 demo questions, where extractive answers from the same passages do for about 3 in 4).
GOLD_POSITION_WEIGHTS = (0.6, 0.2, 0.12, 0.08)
DSTC9_DOMAIN_WIDE = ("taxi", "train")
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[^\W_]+")
_STOP = set("a an the is are was were be been do does did of to in on at for by with and or not no it its this that "
            "these those there what which who whom when where why how can could will would should may i you your we our "
            "they them he she his her have has had any some".split())


@dataclass
class Example:
    """One prompt and its target, with what the held-out evaluation needs to score an answer."""

    id: str
    source: str  # squad2 | dstc9
    kind: Kind
    part: Part
    messages: list[dict[str, str]]
    answerable: bool
    cite: int | None  # number of the passage that answers
    references: list[str] = field(default_factory=list)  # SQuAD answer spans, or the DSTC9 reply

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _first_byte(key: str) -> int:
    return hashlib.sha256(key.encode()).digest()[0]


def squad_part(title: str) -> Part:
    """Which part a SQuAD article belongs to (module docstring)."""
    return "held_out" if _first_byte(title) % 5 == 0 else "train"


def dstc9_part(domain: str, entity_id: str, doc_id: str) -> Part:
    """Which part a DSTC9 snippet's entity belongs to: the support check's rule (module docstring)."""
    key = f"{domain}/{entity_id}" + (f"/{doc_id}" if domain in DSTC9_DOMAIN_WIDE else "")
    return "train" if _first_byte(key) % 2 == 0 else "held_out"


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if w not in _STOP and len(w) > 1}


def sentences_of(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def cited(sentences: list[str], number: int) -> str:
    """``[n]`` and the sentences (module docstring: why the citation opens the answer)."""
    text = " ".join(sentence.strip() for sentence in sentences)
    return f"[{number}] {text}" + ("" if text[-1:] in ".!?" else ".")


def citation_first(text: str) -> str:
    """An answer cited at the end of its claims ("A [1]. B [3].") in the answerer's format ("[1] A. B [3].")."""
    match = re.search(r"\s*\[(\d+)\]", text)
    if match is None:
        return text
    return f"[{match.group(1)}] " + (text[:match.start()] + text[match.end():]).strip()


def _hit(number: int, text: str, title: str | None, section: str | None, source: str) -> Hit:
    return Hit(number, number, text, source, title, section, None, 1.0, 1.0)


def _messages(question: str, passages: list[Hit], target: str) -> list[dict[str, str]]:
    return build_messages(question, passages) + [{"role": "assistant", "content": target}]


def gold_position(rng: random.Random, count: int) -> int:
    """1-based position of the answering passage among ``count`` (``GOLD_POSITION_WEIGHTS``)."""
    return rng.choices(range(1, count + 1), GOLD_POSITION_WEIGHTS[:count])[0]


def _renumber(passages: list[Hit]) -> list[Hit]:
    return [_hit(n, p.text, p.title, p.section, p.source) for n, p in enumerate(passages, start=1)]


# --- SQuAD 2.0 --------------------------------------------------------------------------------------


@dataclass
class _Paragraph:
    article: str
    index: int
    sentences: list[str]
    starts: list[int]  # character offset of each sentence in the normalised context
    qas: list[dict[str, Any]]


def _paragraph(article: str, index: int, context: str, qas: list[dict[str, Any]]) -> _Paragraph:
    # Answer offsets refer to the raw context; whitespace is normalised one character per run, so
    # offsets are mapped through the same normalisation.
    mapping, text, previous_space = [], [], False
    for ch in context:
        space = ch.isspace()
        if space and previous_space:
            mapping.append(len(text) - 1)
            continue
        mapping.append(len(text))
        text.append(" " if space else ch)
        previous_space = space
    normalised = "".join(text)
    sentences, starts, cursor = [], [], 0
    for sentence in sentences_of(normalised):
        at = normalised.find(sentence, cursor)
        sentences.append(sentence)
        starts.append(at)
        cursor = at + len(sentence)
    fixed = []
    for qa in qas:
        qa = dict(qa)
        for key in ("answers", "plausible_answers"):
            qa[key] = [{"text": a["text"], "answer_start": mapping[min(a["answer_start"], len(mapping) - 1)]}
                       for a in qa.get(key) or []]
        fixed.append(qa)
    return _Paragraph(article, index, sentences, starts, fixed)


def _sentence_at(paragraph: _Paragraph, offset: int) -> int:
    return max(i for i, start in enumerate(paragraph.starts) if start <= offset) if paragraph.starts else 0


def _window(paragraph: _Paragraph, around: int | None, rng: random.Random) -> tuple[int, int]:
    """Sentence range [lo, hi) of ``WINDOW_SENTENCES`` sentences, holding sentence ``around`` when given."""
    size = min(len(paragraph.sentences), rng.randint(*WINDOW_SENTENCES))
    if around is None:
        lo = rng.randint(0, len(paragraph.sentences) - size)
    else:
        lo = rng.randint(max(0, around - size + 1), min(around, len(paragraph.sentences) - size))
    return lo, lo + size


def _passage_text(paragraph: _Paragraph, lo: int, hi: int) -> str:
    return " ".join(paragraph.sentences[lo:hi])


def load_squad(path: Path) -> list[_Paragraph]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    return [_paragraph(article["title"], i, p["context"], p["qas"])
            for article in data for i, p in enumerate(article["paragraphs"])]


def squad_examples(paragraphs: list[_Paragraph], part: Part, rng: random.Random) -> Iterator[Example]:
    """Every usable question of the part's articles, once, as an answer, impossible or removed example
    (a third of the answerable questions become ``removed``)."""
    by_article: dict[str, list[_Paragraph]] = {}
    for paragraph in paragraphs:
        if squad_part(paragraph.article) == part:
            by_article.setdefault(paragraph.article, []).append(paragraph)
    for article, group in by_article.items():
        title = article.replace("_", " ")
        for paragraph in group:
            for qa in paragraph.qas:
                impossible = bool(qa["is_impossible"])
                spans = qa["plausible_answers"] if impossible else qa["answers"]
                if not spans:
                    continue
                texts = sorted({a["text"] for a in qa["answers"] + qa["plausible_answers"]})
                first = _sentence_at(paragraph, spans[0]["answer_start"])
                last = _sentence_at(paragraph, spans[0]["answer_start"] + max(len(spans[0]["text"]) - 1, 0))
                lo, hi = _window(paragraph, first, rng)
                if last >= hi:
                    lo, hi = first, min(len(paragraph.sentences), last + 1)
                kind: Kind = "impossible" if impossible else ("removed" if rng.random() < 1 / 3 else "answer")
                target_sentences = paragraph.sentences[first:last + 1]
                if kind == "answer" and len(" ".join(target_sentences).split()) > MAX_TARGET_WORDS:
                    continue
                distractors = []
                others = [p for p in group if p is not paragraph]
                rng.shuffle(others)
                for other in others:
                    olo, ohi = _window(other, None, rng)
                    text = _passage_text(other, olo, ohi)
                    if not any(t.casefold() in text.casefold() for t in texts):
                        distractors.append(_hit(0, text, title, None, f"squad2/{article}/{other.index}"))
                    if len(distractors) >= 4:
                        break
                count = rng.choices(PASSAGE_COUNTS, PASSAGE_WEIGHTS)[0]
                own = _hit(0, _passage_text(paragraph, lo, hi), title, None, f"squad2/{article}/{paragraph.index}")
                if kind == "removed":
                    passages, number = distractors[:count], None
                else:
                    passages = distractors[:count - 1]
                    number = gold_position(rng, len(passages) + 1)
                    passages.insert(number - 1, own)
                if not passages:
                    continue
                target = REFUSAL if number is None or kind == "impossible" else cited(target_sentences, number)
                yield Example(f"squad2/{qa['id']}", "squad2", kind, part,
                              _messages(qa["question"].strip(), _renumber(passages), target),
                              kind == "answer", number if kind == "answer" else None,
                              [a["text"] for a in qa["answers"]] if kind == "answer" else [])


# --- DSTC9 ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snippet:
    domain: str
    entity_id: str
    doc_id: str
    name: str
    title: str
    body: str

    def hit(self) -> Hit:
        return _hit(0, f"{self.title}\n{self.body}", self.name, self.title,
                    f"dstc9/{self.domain}/{self.entity_id}/{self.doc_id}")


def load_dstc9(folder: Path) -> tuple[list[tuple[str, str, _Snippet]], dict[tuple[str, str], list[_Snippet]]]:
    """(label id, reply, snippet) of the written replies that need the FAQ, and every entity's snippets."""
    knowledge = json.loads((Path(folder) / "knowledge.json").read_text(encoding="utf-8"))
    labels = json.loads((Path(folder) / "labels.json").read_text(encoding="utf-8"))
    entities: dict[tuple[str, str], list[_Snippet]] = {}
    for domain, by_entity in knowledge.items():
        for entity_id, entity in by_entity.items():
            name = entity.get("name") or domain.capitalize()
            entities[(domain, entity_id)] = [_Snippet(domain, entity_id, doc_id, name, " ".join(d["title"].split()),
                                                      " ".join(d["body"].split())) for doc_id, d in entity["docs"].items()]
    by_key = {(s.domain, s.entity_id, s.doc_id): s for snippets in entities.values() for s in snippets}
    replies = []
    for number, label in enumerate(labels):
        if label.get("target") and label.get("knowledge") and label.get("response") and label.get("source") != "sf_spoken":
            known = label["knowledge"][0]
            replies.append((f"dstc9/{number}", label["response"].strip(),
                            by_key[(known["domain"], str(known["entity_id"]), str(known["doc_id"]))]))
    return replies, entities


def reply_statements(reply: str) -> list[str]:
    """The reply's sentences less its questions back and offers ("Would you like to book?")."""
    return [s for s in sentences_of(reply) if not s.rstrip().endswith("?")]


def dstc9_examples(folder: Path, part: Part, rng: random.Random, refusal_share: float = 0.25) -> Iterator[Example]:
    replies, entities = load_dstc9(folder)
    for label_id, reply, snippet in replies:
        if dstc9_part(snippet.domain, snippet.entity_id, snippet.doc_id) != part:
            continue
        statements = reply_statements(reply)
        if not statements:
            continue
        question = snippet.title
        asked = content_words(question)
        others = [s for s in entities[(snippet.domain, snippet.entity_id)] if s != snippet
                  and dstc9_part(s.domain, s.entity_id, s.doc_id) == part]
        count = rng.choices(PASSAGE_COUNTS, PASSAGE_WEIGHTS)[0]
        if rng.random() < refusal_share:
            unrelated = [s for s in others if not (content_words(s.title + " " + s.body) & asked)]
            if unrelated:
                passages = [s.hit() for s in rng.sample(unrelated, min(count, len(unrelated)))]
                yield Example(label_id, "dstc9", "removed", part, _messages(question, _renumber(passages), REFUSAL),
                              False, None, [])
                continue
        words = content_words(snippet.title + " " + snippet.body)
        nearest = sorted(others, key=lambda s: (-len(words & content_words(s.title + " " + s.body)), s.doc_id))
        passages = [s.hit() for s in nearest[:count - 1]]
        number = gold_position(rng, len(passages) + 1)
        passages.insert(number - 1, snippet.hit())
        yield Example(label_id, "dstc9", "answer", part, _messages(question, _renumber(passages), cited(statements, number)),
                      True, number, [reply])


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_examples(squad_path: Path, dstc9_dir: Path, part: Part, seed: int) -> list[Example]:
    """Every example of one part, SQuAD then DSTC9, in a fixed order for the seed."""
    rng = random.Random(f"{seed}/{part}")
    return list(squad_examples(load_squad(squad_path), part, rng)) + list(dstc9_examples(dstc9_dir, part, rng))


def sample(examples: list[Example], count: int, seed: int, dstc9_share: float, refusal_share: float) -> list[Example]:
    """``count`` examples (fewer when the part has fewer), ``dstc9_share`` of them DSTC9 and, within each
    source, ``refusal_share`` of them unanswerable; shuffled with the seed."""
    rng = random.Random(seed)
    chosen: list[Example] = []
    for source, wanted in (("dstc9", round(count * dstc9_share)), ("squad2", count - round(count * dstc9_share))):
        pool = [e for e in examples if e.source == source]
        refusals = [e for e in pool if not e.answerable]
        answers = [e for e in pool if e.answerable]
        take = min(len(refusals), round(wanted * refusal_share))
        chosen += rng.sample(refusals, take) + rng.sample(answers, min(len(answers), wanted - take))
    rng.shuffle(chosen)
    return chosen


def write_jsonl(examples: list[Example], path: Path) -> str:
    """Write canonical JSON lines; returns their SHA-256 (the same examples always hash the same)."""
    data = "".join(e.to_json() + "\n" for e in examples).encode()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_examples(path: Path) -> list[Example]:
    return [Example(**json.loads(line)) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
