"""Batch sentiment scoring on a Ray cluster, for imports of historical conversations.

``import_conversations(..., scorer=RaySentimentScorer(settings))`` scores each import batch on a
pool of Ray actors (one per CPU of the cluster, each holding the sentiment model and its
embedder) instead of in this process; the database writes, deduplication, topics and spike scans
stay in the importing process. Scores are those of the same model, so messages record the same
model version either way (checked when the workers start).
"""

from __future__ import annotations

from typing import Sequence

from assistant import ray_cluster
from assistant.config import Settings
from assistant.sentiment.model import Sentiment


class _SentimentWorker:
    """A Ray actor holding the shipped sentiment model."""

    def __init__(self, settings: Settings):
        import torch

        from assistant.sentiment.model import get_sentiment_model

        torch.set_num_threads(1)  # one actor per CPU
        self.model = get_sentiment_model(settings)

    def describe(self) -> str:
        return self.model.version

    def score_batch(self, texts: list[str]) -> list[Sentiment]:
        return self.model.score_batch(texts)


class RaySentimentScorer:
    """``score_batch`` spread over a Ray cluster's actors in slices of ``slice_size`` texts, results in order."""

    name = "helpmate"

    def __init__(self, settings: Settings, address: str | None = None, actors: int | None = None,
                 slice_size: int = 64, start_timeout_s: float = 300.0):
        self._owns_ray = ray_cluster.connect(address)
        self._actors: list = []
        try:
            started = ray_cluster.start_actors(_SentimentWorker, (settings,), actors, start_timeout_s)
        except BaseException:
            self.close()
            raise
        self._actors = [actor for actor, _ in started]
        versions = {version for _, version in started}
        if len(versions) != 1:
            self.close()
            raise ray_cluster.RayUnavailableError(f"Ray workers hold different sentiment models {sorted(versions)}; "
                                                  f"install the same helpmate release on every machine")
        self.version: str = versions.pop()
        self.slice_size = slice_size

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        import ray

        texts = list(texts)
        refs = [self._actors[i % len(self._actors)].score_batch.remote(texts[start:start + self.slice_size])
                for i, start in enumerate(range(0, len(texts), self.slice_size))]
        return [sentiment for part in ray.get(refs) for sentiment in part]

    def close(self) -> None:
        ray_cluster.stop_actors(self._actors)
        self._actors = []
        ray_cluster.disconnect(self._owns_ray)
        self._owns_ray = False

    def __enter__(self) -> RaySentimentScorer:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
