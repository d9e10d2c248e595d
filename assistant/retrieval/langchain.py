"""Helpmate search as a LangChain retriever, for chains and agents that take a ``BaseRetriever``."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.retrieval.retriever import Mode, Retriever
from assistant.retrieval.types import Hit


def hit_to_document(hit: Hit) -> Document:
    """A LangChain document whose metadata says where the passage came from, for citations."""
    return Document(
        page_content=hit.text,
        metadata={
            "chunk_id": hit.chunk_id, "document_id": hit.document_id, "source": hit.source, "title": hit.title,
            "section": hit.section, "page": hit.page, "score": hit.score,
            "dense_score": hit.dense_score, "bm25_score": hit.bm25_score,
        },
    )


class HelpmateRetriever(BaseRetriever):
    """Searches one knowledge base; ``retriever`` is shared so its loaded indexes are too."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kb: str
    k: int = 5
    mode: Mode = "hybrid"
    sources: list[str] | None = None
    retriever: Retriever

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(hit) for hit in self.retriever.search(query, self.kb, self.k, self.mode, self.sources)]
