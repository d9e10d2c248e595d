"""Retrieval quality on a BEIR dataset: nDCG@10, Recall@100 and MRR@10, as BEIR reports them.

Scores are per document, not per chunk: a document ranks by its best chunk (BEIR's max-passage
convention), and a chunk's BEIR document id is the ``_id`` after ``#`` in its source
(``.../corpus.jsonl#4983``). nDCG uses linear gains and log2 discounts like ``pytrec_eval``;
Recall@100 counts judgements with relevance ≥ 1; MRR@10 is BEIR's: 1 / rank of the first relevant
document in the top 10. Every judged query counts; one with no hits scores zero.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from assistant.retrieval.retriever import DENSE_WEIGHT, Fusion, Mode, Retriever
from assistant.retrieval.types import Hit

Qrels = dict[str, dict[str, int]]


def load_queries(path: Path) -> dict[str, str]:
    """``_id`` → text of a BEIR ``queries.jsonl``."""
    queries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            queries[str(record["_id"])] = str(record["text"])
    return queries


def load_qrels(path: Path) -> Qrels:
    """query id → {document id: relevance} of a BEIR ``qrels/SPLIT.tsv`` (header line, CRLF line ends tolerated)."""
    qrels: Qrels = {}
    lines = path.read_text(encoding="utf-8").replace("\r", "").split("\n")
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}")
        qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    return qrels


def beir_doc_id(source: str) -> str:
    """The BEIR ``_id`` of a document ingested from a ``corpus.jsonl`` (its source is ``path#_id``)."""
    return source.rsplit("#", 1)[-1]


def rank_documents(hits: Iterable[Hit]) -> list[str]:
    """BEIR document ids, best first, each scored by its best chunk."""
    best: dict[str, float] = {}
    for hit in hits:
        doc = beir_doc_id(hit.source)
        if doc not in best or hit.score > best[doc]:
            best[doc] = hit.score
    return sorted(best, key=best.__getitem__, reverse=True)


def ndcg_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    dcg = sum(relevance.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:k]))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(rank + 2) for rank, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 100) -> float:
    relevant = {doc for doc, r in relevance.items() if r > 0}
    return len(relevant.intersection(ranking[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(ranking[:k]):
        if relevance.get(doc, 0) > 0:
            return 1.0 / (rank + 1)
    return 0.0


@dataclass
class RetrievalScores:
    """Mean metrics over the judged queries of one split, how they were searched, and how long it took.

    ``fusion`` is None unless the mode is hybrid; ``dense_weight`` is None unless the fusion is minmax.
    """

    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    mode: str
    queries: int
    seconds: float
    fusion: str | None = None
    dense_weight: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def score_rankings(rankings: Mapping[str, Sequence[str]], qrels: Qrels) -> tuple[float, float, float]:
    """Mean (nDCG@10, Recall@100, MRR@10) over every query in ``qrels``; a query without a ranking scores zero."""
    if not qrels:
        raise ValueError("no judged queries to evaluate")
    totals = [0.0, 0.0, 0.0]
    for query_id, relevance in qrels.items():
        ranking = rankings.get(query_id, [])
        totals[0] += ndcg_at_k(ranking, relevance, 10)
        totals[1] += recall_at_k(ranking, relevance, 100)
        totals[2] += mrr_at_k(ranking, relevance, 10)
    return totals[0] / len(qrels), totals[1] / len(qrels), totals[2] / len(qrels)


def evaluate_beir(retriever: Retriever, kb: str, beir_dir: Path, split: str = "test", mode: Mode = "hybrid",
                  fusion: Fusion = "minmax", dense_weight: float = DENSE_WEIGHT) -> RetrievalScores:
    """Search every judged query of ``beir_dir/qrels/SPLIT.tsv`` in ``kb`` (which holds that corpus) and score the top 100.

    ``fusion`` and ``dense_weight`` are ``Retriever.search``'s, for hybrid mode.
    """
    qrels_path = beir_dir / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise FileNotFoundError(f"{qrels_path} does not exist; --split must name a file in {beir_dir / 'qrels'}")
    qrels = load_qrels(qrels_path)
    queries = load_queries(beir_dir / "queries.jsonl")
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise ValueError(f"{len(missing)} judged queries are missing from {beir_dir / 'queries.jsonl'} (first: {missing[0]!r})")
    ids = list(qrels)
    started = time.perf_counter()
    results = retriever.search_many([queries[q] for q in ids], kb, k=100, mode=mode, fusion=fusion, dense_weight=dense_weight)
    seconds = time.perf_counter() - started
    ndcg, recall, mrr = score_rankings({q: rank_documents(hits) for q, hits in zip(ids, results)}, qrels)
    hybrid = mode == "hybrid"
    return RetrievalScores(ndcg_at_10=ndcg, recall_at_100=recall, mrr_at_10=mrr, mode=mode, queries=len(ids),
                           seconds=round(seconds, 3), fusion=fusion if hybrid else None,
                           dense_weight=dense_weight if hybrid and fusion == "minmax" else None)
