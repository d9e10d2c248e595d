"""Training the support verifier (``verifier``) on DSTC9's human replies, reproducibly.

Pairs come from the ``fit`` part only (``support_data.dstc9_part``: whole entities go to one
part); every figure in the metadata is measured with the whole check on the ``held_out`` part.

* positive: each claim of a reply (``claims.answer_claims``) against the sentence of its own
  snippet closest to it in embedding space;
* negative: the claim against the sentences of the three other snippets of the same entity
  (another fact of the right entity), against the four snippets of another entity (the right kind
  of fact, the wrong entity), and changed against its own snippet: the entity's name replaced by
  another's, a number replaced by another number of the same snippet (a wrong row: "opens at 7AM"
  where the snippet says 5AM on weekdays and 7AM on Sundays, which the number rule cannot see),
  and the negation flipped ("does not offer" / "does offer"; weighted ``FLIP_WEIGHT``: the
  rewritten sentences are often clumsy, and at full weight they taught the model to distrust every
  negation, rejecting human paraphrases that say "no" differently from their snippet).

The logistic regression (scikit-learn, L-BFGS, balanced classes) is deterministic for the same
pairs; the seed decides which entity is "another" and, with ``limit``, which replies are sampled.
``metadata.json`` records the data files' SHA-256, the seed, the settings, the pair counts and the
held-out rates at the threshold in force.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from assistant.answering.claims import answer_claims, content_terms, numbers, reading, units_of
from assistant.answering.support_data import SupportCase, dstc9_cases, file_hashes
from assistant.answering.verifier import FEATURES, Statement, Verifier, pair_features

REGULARISATION = 1.0  # scikit-learn's C: inverse L2 strength
MAX_ITERATIONS = 2000
FLIP_WEIGHT = 0.3  # sample weight of a negation-flipped negative
_NEGATIONS = [  # (pattern, replacement) that remove a negation, tried in order
    (r"\b(does|do|is|are|was|were|can|will|did|has|have)\s+not\b", r"\1"),
    (r"\b(does|do|is|are|was|were|did|has|have)n['’]t\b", r"\1"), (r"\bcan['’]t\b|\bcannot\b", "can"),
    (r"\bwon['’]t\b", "will"), (r"^\W*no\b[,.!]?", "Yes,"), (r"\bno\s+", ""), (r"\bunfortunately,?\s*", ""),
    (r"\bnot\s+", ""),
]
_AFFIRMATIONS = [  # (pattern, replacement) that add one
    (r"^\W*(yes|yeah|sure|absolutely)\b[,.!]?", "No,"), (r"\b(is|are|was|were|can|will|does|do|did)\b", r"\1 not"),
    (r"\b(has|have)\b", r"\1 no"),
    (r"\b(offer|provide|allow|accept|serve|include|require|charge|permit|welcome)s\b", r"does not \1"),
]


def flip_negation(text: str) -> str | None:
    """``text`` saying the opposite by its negation (removed if it has one, else added), or None."""
    negated = re.search(r"\b(?:not|no|cannot)\b|n['’]t\b|unfortunately", text, re.IGNORECASE)
    for pattern, replacement in (_NEGATIONS if negated else _AFFIRMATIONS):
        changed = re.sub(pattern, replacement, text, count=1, flags=re.IGNORECASE)
        if changed != text:
            return changed
    return None


def swap_number(text: str, sentence: str) -> str | None:
    """``text`` with its first number that ``sentence`` also holds replaced by another number of
    ``sentence`` (the wrong row of a table: every number is in the passage, bound to the wrong thing)."""
    found = re.findall(r"\d+(?:[.,:]\d+)*", sentence)
    for match in re.finditer(r"\d+(?:[.,:]\d+)*", text):
        others = [n for n in found if n != match.group(0)]
        if match.group(0) in found and others:
            return f"{text[:match.start()]}{others[0]}{text[match.end():]}"
    return None


def swap_entity(text: str, name: str | None, other: str | None) -> str | None:
    """``text`` with the entity's ``name`` replaced by ``other``, or None when it does not name it."""
    if not name or not other or name.lower() == other.lower() or name.lower() not in text.lower():
        return None
    return re.sub(re.escape(name), other, text, flags=re.IGNORECASE)

def training_pairs(cases: list[SupportCase], embedder) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Feature rows, labels, sample weights and counts per kind of pair (module docstring)."""
    names = sorted({c.entity for c in cases if c.entity})
    pairs: list[tuple[str, object, int, str, str]] = []  # (claim reading, unit(s), label, question, kind)
    for number, case in enumerate(cases):
        _, claims = answer_claims(case.answer, case.question)
        units = units_of(case.passages)
        question = case.question or ""
        for claim in claims:
            text = reading(claim.text, question)
            usable = [u for u in units if numbers(claim.text) <= u.numbers]
            kind = "other_entity" if case.condition == "other" else "same_entity_other_fact"
            pairs += [(text, u, 0, question, kind) for u in usable if u.passage != case.grounding]
            own = [u for u in usable if u.passage == case.grounding]
            if case.condition == "other" or not own:
                continue
            pairs.append((text, own, 1, question, "positive"))  # the closest own sentence is chosen once embedded
            other = names[(names.index(case.entity) + 1 + number) % len(names)] if case.entity in names else None
            for changed, kind in ((flip_negation(text), "negation_flipped"), (swap_entity(text, case.entity, other), "entity_swapped"),
                                  (swap_number(text, " ".join(u.text for u in own)), "number_swapped")):
                if changed:
                    pairs.append((changed, own, 0, question, kind))
    texts = sorted({p[0] for p in pairs} | {u.text for p in pairs for u in (p[1] if isinstance(p[1], list) else [p[1]])})
    vectors = dict(zip(texts, embedder.encode(texts, cache=True)))
    rows, labels, weights = [], [], []
    counts = {k: 0 for k in ("positive", "same_entity_other_fact", "other_entity", "negation_flipped", "entity_swapped",
                             "number_swapped")}
    for text, unit, label, question, kind in pairs:
        claim = Statement(text, vectors[text], content_terms(text), question=question)
        if isinstance(unit, list):  # the own snippet's sentence closest to the claim
            unit = max(unit, key=lambda u: float(vectors[u.text] @ claim.vector))
        rows.append(pair_features(claim, Statement(unit.text, vectors[unit.text], unit.terms, unit.scope)))
        labels.append(label)
        weights.append(FLIP_WEIGHT if kind == "negation_flipped" else 1.0)
        counts[kind] += 1
    return np.stack(rows), np.asarray(labels, dtype=np.int64), np.asarray(weights, dtype=np.float64), counts


def fit_verifier(rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(weights, bias) of the logistic regression."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=REGULARISATION, class_weight="balanced", max_iter=MAX_ITERATIONS)
    model.fit(rows.astype(np.float64), labels, sample_weight=weights)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def train_verifier(settings, dataset: Path, output: Path | None, seed: int = 0, limit: int | None = None,
                   held_out_limit: int | None = None, progress: Callable[[str], None] | None = None) -> Verifier:
    """Train on the fit part, measure the whole check on the held-out part, and write both to ``output``
    (nothing is written when it is None). ``limit``/``held_out_limit``: replies sampled per part."""
    from assistant.answering.grounding import Grounder
    from assistant.answering.support_eval import evaluate_support
    from assistant.embeddings import get_embedder

    say = progress or (lambda message: None)
    embedder = get_embedder(settings)
    started = time.perf_counter()
    fit_cases = dstc9_cases(dataset, "fit", seed, limit)
    say(f"embedding the fit part's claims and passages ({len(fit_cases)} cases)")
    rows, labels, weights, counts = training_pairs(fit_cases, embedder)
    say(f"fitting on {len(labels)} pairs")
    weight, bias = fit_verifier(rows, labels, weights)
    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "embedding_model": embedder.name,
        "architecture": "logistic regression over pair features: MiniLM cosine, product and absolute difference of the "
                        "claim's and the sentence's vectors, word coverage, negation, yes/no, names of the claim and the "
                        "question missing from the passage",
        "features": list(FEATURES) + [f"product_{i}" for i in range(embedder.dim)]
                    + [f"difference_{i}" for i in range(embedder.dim)],
        "training": {"regularisation_C": REGULARISATION, "class_weight": "balanced", "solver": "lbfgs",
                     "max_iterations": MAX_ITERATIONS, "negation_flip_weight": FLIP_WEIGHT, "pairs": counts,
                     "rows": int(len(labels)), "seconds": round(time.perf_counter() - started, 1)},
        "seed": seed,
        "data": {"dataset": "DSTC9 track 1 test split (Apache-2.0)", "files": file_hashes(dataset),
                 "fit_replies": sum(c.condition == "own" for c in fit_cases), "limit": limit,
                 "split": "whole hotels, restaurants and attractions (taxi and train FAQs: whole snippets) by the parity "
                          "of the first byte of SHA-256 of domain/entity_id; even: fit, odd: held out"},
    }
    verifier = Verifier(weight, bias, metadata)
    say("measuring the whole check on the held-out part")
    held_out = dstc9_cases(dataset, "held_out", seed, held_out_limit)
    threshold = settings.support_min_score
    metadata["metrics"] = {"threshold": threshold, "held_out_limit": held_out_limit,
                           "held_out": evaluate_support(held_out, Grounder(embedder, threshold, verifier=verifier))}
    if output is not None:
        verifier.save(Path(output))
    return verifier
