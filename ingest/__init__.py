"""Batch ingestion: files → documents → chunks → embeddings → FAISS index, incrementally."""
