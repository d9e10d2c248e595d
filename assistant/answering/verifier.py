"""The learned part of the support check: how likely a passage sentence states what a claim states.

Word-overlap rules judged answers by the words they share with a passage, so they threw away what
human agents write: on DSTC9's grounded replies (BENCHMARKS.md, "Support check") they accepted
about one reply in four given its own snippet ("doesn't offer any breakfast" shares one content
word with "No breakfast is offered."). Embedding similarity alone does not separate support from
contradiction either: MiniLM puts "we accept bitcoin" close to "we do not accept cryptocurrency".

So a logistic regression weighs both kinds of evidence for one (claim, passage sentence) pair
(``pair_features``):

* the packaged MiniLM's cosine of the two and, as in sentence-pair classifiers (Sentence-BERT's
  NLI head), the element-wise product and absolute difference of their vectors;
* the share of the claim's content words (stemmed) found in the sentence or its headings, and of
  the sentence's found in the claim;
* negation on either side and whether they disagree, a leading Yes against a negated sentence
  and a leading No against an affirmative one (only when the question asks yes or no: "Yes, it is
  50 MB a day." to "How much data is included?" affirms nothing);
* names: capitalised words and acronyms of the claim found nowhere in the passage or its
  headings (an acronym counts as found when it is built from the starts of consecutive passage
  words: "AMEX" from "American Express"), and names in the customer's question that the passage
  never mentions: "Free WiFi is available." answers a question about the Gonville Hotel only from
  a passage about the Gonville Hotel.

It is trained on one part of DSTC9 (``verifier_training``; the split rule is in ``support_data``)
by ``helpmate eval support --dstc9 DIR --retrain``, in seconds once the texts are embedded. The
weights (``verifier_weights/``, a few kB) and their ``metadata.json`` record the data hashes, seed,
pair counts and held-out rates.

What it does not do well (BENCHMARKS.md measures it): a sentence vector hardly changes with a
negation, so a claim whose negation was flipped is caught by the word features only, and often
not; a fact that another entity shares, stated without a name, is support as far as any reader
of the passages can tell (on DSTC9's held-out part it rejects 0.98 of the wrong-entity cases whose
reply or question names the entity and 0.60 of those that name none: BENCHMARKS.md); and on the
demo questions it kept 7 of 42 wrong answers of the embedded 135M model, so
``HELPMATE_SUPPORT_CHECK`` defaults to the word-overlap rules. A cross-encoder
(MiniLM reading both texts at once, LoRA, one epoch) was tried: it rejected fewer wrong-entity
cases (0.60 of 300 held-out replies) and was slower.
Numbers are not left to it: the check requires every number of a claim in its evidence.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.answering.claims import asks_yes_or_no

WEIGHTS_DIR = Path(__file__).parent / "verifier_weights"
HEAD_FILE = "head.safetensors"
METADATA_FILE = "metadata.json"

NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nor|neither|without|cannot|unfortunately|unavailable|nobody|nowhere)\b|n['’]t\b",
    re.IGNORECASE)
_LEAD = re.compile(r"^\W*(yes|yeah|yep|sure|absolutely|no|nope)\b", re.IGNORECASE)
_CAPITALISED = re.compile(r"(?<![\w'’])[A-Z][\w'’&-]*")
_TOKEN = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Capitalised words that name nothing: sentence openers, pronouns.
_NOT_NAMES = {
    "i", "i'm", "i'd", "i'll", "i've", "yes", "no", "yeah", "sure", "ok", "okay", "unfortunately", "absolutely",
    "sorry", "please", "thanks", "thank", "great", "good", "hello", "hi", "well", "also", "however", "but", "and",
    "the", "a", "an", "this", "that", "these", "those", "there", "they", "their", "it", "its", "it's", "you", "your",
    "we", "our", "he", "she", "if", "so", "of", "course", "definitely", "certainly", "indeed", "actually",
}
FEATURES = (
    "cosine", "coverage", "precision", "claim_negated", "unit_negated", "negation_mismatch", "yes_against_negation",
    "no_against_affirmation", "unmatched_names", "unmatched_first_word", "unmatched_acronyms", "claim_words",
    "unmatched_name_phrases", "question_unmatched_names",
)

@dataclass
class Statement:
    """One side of a pair: its text, embedding and content words; for a passage sentence ``scope``,
    the lower-cased passage with its headings; for a claim, the ``question`` it answers."""

    text: str
    vector: np.ndarray
    terms: set[str]
    scope: str = ""
    question: str = ""

    @property
    def negated(self) -> bool:
        return bool(NEGATION.search(self.text))

    @property
    def lead(self) -> str | None:
        """The claim's leading yes or no; None when there is none or the question asks what, when or how
        (a "Yes, it is 50 MB a day." to "How much data is included?" affirms nothing)."""
        match = _LEAD.match(self.text)
        if not match or (self.question and not asks_yes_or_no(self.question)):
            return None
        return "no" if match.group(1).lower() in ("no", "nope") else "yes"

def acronym_in(acronym: str, words: list[str]) -> bool:
    """Whether ``acronym`` (lower case) is the concatenated starts of consecutive ``words``."""
    def match(rest: str, position: int) -> bool:
        if not rest:
            return True
        if position >= len(words):
            return False
        word = words[position]
        return any(word.startswith(rest[:n]) and match(rest[n:], position + 1)
                   for n in range(1, min(len(rest), len(word)) + 1))

    return any(match(acronym, start) for start in range(len(words)) if words[start].startswith(acronym[0]))

def names(text: str) -> tuple[list[str], str | None, list[str]]:
    """(capitalised words after the first, the first word if capitalised, acronyms), lower-cased."""
    inner, first, acronyms = [], None, []
    for match in _CAPITALISED.finditer(text):
        word = match.group(0)
        lowered = word.lower().strip("'’")
        if lowered in _NOT_NAMES:
            continue
        if len(word) > 1 and word.isupper() and word.isalpha():
            acronyms.append(lowered)
        elif match.start() == len(text) - len(text.lstrip(" \"'(")):
            first = lowered
        else:
            inner.append(lowered)
    return inner, first, acronyms

def name_phrases(text: str) -> list[list[str]]:
    """Runs of capitalised words that name something ("the Axiom Hotel" → ["axiom", "hotel"]), lower-cased;
    a run at the start of the text counts from its second word."""
    phrases: list[list[str]] = []
    last_end = -1
    start = len(text) - len(text.lstrip(" \"'("))
    for match in _CAPITALISED.finditer(text):
        word = match.group(0).lower().strip("'’")
        adjacent = last_end >= 0 and text[last_end:match.start()].strip() == ""
        last_end = match.end()
        if word in _NOT_NAMES or (match.start() == start and not (len(word) > 1 and match.group(0).isupper())):
            if not adjacent:
                phrases.append([])
            continue
        if adjacent and phrases:
            phrases[-1].append(word)
        else:
            phrases.append([word])
    return [p for p in phrases if p]


def unmatched_phrases(phrases: list[list[str]], scope_words: set[str], scope_joined: str) -> int:
    """Phrases whose first word occurs nowhere in the scope, alone or written together ("Mastercard", "Master Card")."""
    return sum(p[0] not in scope_words and "".join(p) not in scope_joined and p[0] not in scope_joined for p in phrases)


def pair_features(claim: Statement, unit: Statement) -> np.ndarray:
    """One row: the scalar features in ``FEATURES`` order, then product and absolute difference of the vectors."""
    shared = claim.terms & unit.terms
    coverage = len(shared) / len(claim.terms) if claim.terms else 0.0
    precision = len(shared) / len(unit.terms) if unit.terms else 0.0
    cn, un = claim.negated, unit.negated
    lead = claim.lead
    scope_words = _TOKEN.findall(unit.scope)
    scope_set = set(scope_words)
    inner, first, acronyms = names(claim.text)
    unmatched = sum(all(p not in scope_set for p in _TOKEN.findall(w)) for w in inner)
    unmatched_first = first is not None and all(p not in scope_set for p in _TOKEN.findall(first))
    unmatched_acronyms = sum(a not in scope_set and not acronym_in(a, scope_words) for a in acronyms)
    joined = "".join(scope_words)
    claim_phrases = unmatched_phrases(name_phrases(claim.text), scope_set, joined)
    # The first word of each of the question's sentences asks or opens ("Write to me at ..."); it names nothing.
    asked = [w for sentence in _SENTENCE_END.split(claim.question) for w in names(sentence)[0]] if claim.question else []
    question_names = sum(all(p not in scope_set for p in _TOKEN.findall(w)) for w in asked)
    scalars = np.array([float(claim.vector @ unit.vector), coverage, precision, cn, un, cn != un, lead == "yes" and un,
                        lead == "no" and not un, min(unmatched, 3), unmatched_first, min(unmatched_acronyms, 2),
                        min(len(claim.terms), 12) / 12, min(claim_phrases, 2), min(question_names, 3)], dtype=np.float32)
    return np.concatenate([scalars, claim.vector * unit.vector, np.abs(claim.vector - unit.vector)]).astype(np.float32)


class VerifierFileError(RuntimeError):
    """The verifier's weights are missing or do not fit the embedding model."""


class Verifier:
    """Logistic regression over ``pair_features``: the probability that a sentence supports a claim."""

    def __init__(self, weight: np.ndarray, bias: float, metadata: dict):
        self.weight = np.asarray(weight, dtype=np.float32).reshape(-1)
        self.bias = float(bias)
        self.metadata = metadata

    @classmethod
    def load(cls, folder: Path | None = None) -> Verifier:
        """The verifier in ``folder`` (default: the one shipped in ``verifier_weights/``)."""
        folder = Path(folder) if folder is not None else WEIGHTS_DIR
        if not (folder / HEAD_FILE).is_file() or not (folder / METADATA_FILE).is_file():
            raise VerifierFileError(f"no support verifier in {folder}; run `helpmate eval support --dstc9 DIR --retrain`")
        from safetensors.numpy import load_file

        arrays = load_file(str(folder / HEAD_FILE))
        return cls(arrays["weight"], float(arrays["bias"].reshape(-1)[0]), json.loads((folder / METADATA_FILE).read_text()))

    def save(self, folder: Path) -> None:
        """Weights (safetensors, no pickle) and metadata, each written under a temporary name first."""
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (HEAD_FILE + ".tmp")
        save_file({"weight": self.weight, "bias": np.array([self.bias], dtype=np.float32)}, str(tmp))
        tmp.replace(folder / HEAD_FILE)
        tmp = folder / (METADATA_FILE + ".tmp")
        tmp.write_text(json.dumps(self.metadata, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(folder / METADATA_FILE)
        for name in (HEAD_FILE, METADATA_FILE):
            (folder / name).chmod(0o644)

    def check_dimensions(self, embedder) -> None:
        """The weights were trained on this embedding model's vectors (same size)."""
        expected = len(FEATURES) + 2 * embedder.dim
        if self.weight.shape[0] != expected or self.metadata.get("embedding_model") not in (None, embedder.name):
            raise VerifierFileError(f"the support verifier was trained on {self.metadata.get('embedding_model')}, not "
                                    f"{embedder.name}; retrain it with `helpmate eval support --dstc9 DIR --retrain`")

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Support probabilities of feature rows (``pair_features``)."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.float32)
        return 1.0 / (1.0 + np.exp(-(np.asarray(rows) @ self.weight + self.bias)))


_loaded: dict[str, Verifier] = {}
_lock = threading.Lock()


def get_verifier(embedder) -> Verifier:
    """The shipped verifier, loaded once per process and checked against ``embedder``'s model."""
    with _lock:
        if "shipped" not in _loaded:
            _loaded["shipped"] = Verifier.load()
        verifier = _loaded["shipped"]
    verifier.check_dimensions(embedder)
    return verifier
