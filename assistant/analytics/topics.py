"""Topics of negative messages: the knowledge-base document they are about, else a named cluster."""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.retrieval.retriever import Retriever

# A negative message whose best knowledge-base passage is less similar than this (cosine) is
# about nothing the knowledge base covers; it is left for clustering instead of a wrong title.
MIN_TOPIC_SIMILARITY = 0.3

# Words scikit-learn's English stop list lacks that name no topic: forms of "do", "be" and "have",
# the stems its token pattern leaves of contractions ("doesn't" -> "doesn"), greetings and fillers.
_MORE_STOP_WORDS = frozenset(
    "does did doing don doesn didn isn aren wasn weren haven hasn hadn won wouldn couldn shouldn ve ll "
    "got just really hi hello hey dear thanks thank regards cheers ok okay".split())

_retrievers: dict[tuple[str, str], Retriever] = {}
_retrievers_lock = threading.Lock()


def _retriever(settings: Settings) -> Retriever:
    key = (settings.database, str(settings.data_dir))
    with _retrievers_lock:
        if key not in _retrievers:
            _retrievers[key] = Retriever(settings)
        return _retrievers[key]


def kb_topics(texts: Sequence[str], kb: str | None, settings: Settings) -> list[str | None]:
    """The title of the best-matching document of ``kb`` per text, or None where nothing matches.

    Hybrid search (the same the assistant answers with) finds the document; a text whose best
    passage is further than ``MIN_TOPIC_SIMILARITY`` from it, or a knowledge base that does not
    exist or is empty, gives None, and those texts are clustered instead (``cluster_topics``).
    """
    if not texts or kb is None:
        return [None] * len(texts)
    try:
        results = _retriever(settings).search_many(list(texts), kb, k=1, mode="hybrid")
    except ValueError:  # no such knowledge base (yet)
        return [None] * len(texts)
    topics: list[str | None] = []
    for hits in results:
        hit = hits[0] if hits else None
        if hit is None or hit.dense_score is None or hit.dense_score < MIN_TOPIC_SIMILARITY:
            topics.append(None)
        else:
            topics.append((hit.title or hit.source.rsplit("/", 1)[-1]).strip()[:300])
    return topics


def cluster_topics(texts: Sequence[str], vectors: np.ndarray, max_clusters: int = 10) -> list[str]:
    """Readable topics for messages no knowledge base covers: k-means on their embeddings.

    Each cluster is named by its three most distinctive words (TF-IDF of the cluster's text
    against the other clusters), e.g. "zipper, tent, broke". Deterministic (fixed seed).
    """
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    n = len(texts)
    if n == 0:
        return []
    k = max(1, min(max_clusters, int(round(np.sqrt(n / 2)))))
    labels = np.zeros(n, dtype=int) if k == 1 else KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)
    documents = [" ".join(texts[i] for i in range(n) if labels[i] == c) for c in range(k)]
    names = []
    try:
        tfidf = TfidfVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | _MORE_STOP_WORDS), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", sublinear_tf=True)
        weights = tfidf.fit_transform(documents).toarray()
        vocabulary = tfidf.get_feature_names_out()
        for c in range(k):
            top = [vocabulary[i] for i in np.argsort(-weights[c])[:3] if weights[c, i] > 0]
            names.append(", ".join(top) if top else "other")
    except ValueError:  # no words at all (only numbers, emoji or stop words)
        names = ["other"] * k
    return [names[c] for c in labels]


def assign_topics(texts: Sequence[str], kb: str | None, settings: Settings) -> list[str]:
    """A topic for each negative message: its knowledge-base document where one matches, else a cluster."""
    topics = kb_topics(texts, kb, settings)
    missing = [i for i, topic in enumerate(topics) if topic is None]
    if missing:
        unmatched = [texts[i] for i in missing]
        for i, name in zip(missing, cluster_topics(unmatched, get_embedder(settings).encode(unmatched))):
            topics[i] = name
    return [str(topic) for topic in topics]
