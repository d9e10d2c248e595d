"""The word-overlap support rules Helpmate used before the learned verifier, kept to compare against.

``helpmate eval support`` prints them beside the verifier's verdicts (BENCHMARKS.md, "Support
check"): on DSTC9's human replies they reject almost every reply given another entity's snippets
but also most replies given their own, because a human paraphrase rarely keeps 80% of the
snippet's words. A claim was supported by one passage sentence (headings as context) when

* every number of the claim occurs there,
* the two agree on negation, and on a leading Yes/No when both have one,
* all but ``MAX_MISSING_SHARE`` of the claim's content words (stemmed) are there,
* and none of the missing words occurs in another passage that was shown ("express shipping
  costs 4.95 EUR" against "standard shipping costs 4.95 EUR", with express shipping in passage 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.answering.claims import Claim, Unit

MAX_MISSING_SHARE = 0.2  # of a claim's content words, this share (rounded down) may be absent from its evidence
MIN_CLAIM_WORDS = 2  # content words besides numbers that a claim needs to say what its numbers are


def overlap_candidates(claim: Claim, units: list[Unit], terms_by_passage: dict[int, set[str]],
                       allowed: set[int]) -> list[tuple[int, float]]:
    """The units (index, share of the claim's words they hold) that support ``claim`` by the rules above;
    when there are none, ``claim.reason`` says why."""
    from assistant.answering.claims import content_terms, numbers, polarity

    terms, claim_numbers, claim_polarity = content_terms(claim.text), numbers(claim.text), polarity(claim.text)
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
        if claim_polarity[1] != unit.polarity[1] or (
                claim_polarity[0] and unit.polarity[0] and claim_polarity[0] != unit.polarity[0]):
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
