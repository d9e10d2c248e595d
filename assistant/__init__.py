"""Helpmate's assistant and its core: settings, database, embeddings, retrieval, model backends."""
