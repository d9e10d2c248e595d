"""Search a knowledge base: FAISS and BM25 indexes, hybrid ranking, BEIR evaluation, a LangChain retriever."""
