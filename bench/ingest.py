"""Ingestion speed against the embedding model's own ceiling and against float32.

Ingests the first N documents of SciFact's corpus.jsonl into a fresh data directory with the configured
embedding backend (``HELPMATE_EMBEDDING_BACKEND``), then, in the same process, times the raw ``encode``
over exactly the chunk texts that were embedded, with that backend and with float32 ``torch``, and
finally times a second run over the unchanged file. Goals: full pipeline within 1.3x the raw encode
time of its own backend (issue "Foundation"), and at most 0.5x the float32 raw encode (issue 18);
unchanged re-run under 5% of the first run.

    python bench/ingest.py --docs 2000
    HELPMATE_EMBEDDING_BACKEND=torch-bf16 python bench/ingest.py --docs 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
# `python bench/ingest.py` puts bench/ first on sys.path, where this file would shadow the `ingest` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
DEFAULT_CORPUS = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000, help="how many corpus documents to ingest (default 2000; SciFact has 5,183)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HELPMATE_DATA_DIR"] = tmp
        from sqlalchemy import select

        from assistant.config import get_settings
        from assistant.database import session_scope
        from assistant.database.models import Chunk
        from assistant.embeddings import get_embedder
        from ingest.chunking import ChunkDraft
        from ingest.pipeline import Ingestor

        settings = get_settings()
        corpus = Path(tmp) / "corpus.jsonl"
        with open(args.corpus) as source, open(corpus, "w") as target:
            for i, line in enumerate(source):
                if i >= args.docs:
                    break
                target.write(line)

        embedder = get_embedder(settings)
        embedder.encode(["warm-up"] * 8)
        ingestor = Ingestor("bench", settings, embedder, show_progress=False)

        started = time.perf_counter()
        first = ingestor.run([corpus])
        pipeline_s = time.perf_counter() - started

        with session_scope(settings) as session:
            rows = session.execute(select(Chunk.text, Chunk.title, Chunk.section, Chunk.page, Chunk.token_count).order_by(Chunk.id)).all()
        texts = [ChunkDraft(*row).embedding_text for row in rows]
        started = time.perf_counter()
        embedder.encode(texts)
        encode_s = time.perf_counter() - started
        float32 = embedder if embedder.backend == "torch" else get_embedder(settings.model_copy(update={"embedding_backend": "torch"}))
        float32.encode(["warm-up"] * 8)
        started = time.perf_counter()
        float32.encode(texts)
        float32_s = time.perf_counter() - started

        started = time.perf_counter()
        second = ingestor.run([corpus])
        rerun_s = time.perf_counter() - started

    result = {
        "backend": embedder.backend, "documents": first.added, "chunks": len(texts),
        "pipeline_s": round(pipeline_s, 2), "raw_encode_s": round(encode_s, 2),
        "pipeline_over_encode": round(pipeline_s / encode_s, 3),
        "float32_raw_encode_s": round(float32_s, 2), "pipeline_over_float32_encode": round(pipeline_s / float32_s, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "rerun_s": round(rerun_s, 3), "rerun_share_of_first": round(rerun_s / pipeline_s, 4),
        "rerun_unchanged": second.unchanged, "rerun_chunks_embedded": second.chunks_added,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['documents']} documents, {result['chunks']} chunks, embedding backend {embedder.backend}, "
              f"load {result['load_average_1m']}")
        print(f"full pipeline     {pipeline_s:8.2f} s")
        print(f"raw encode        {encode_s:8.2f} s   pipeline / encode = {result['pipeline_over_encode']:.3f}  (goal <= 1.3)")
        print(f"float32 encode    {float32_s:8.2f} s   pipeline / float32 encode = {result['pipeline_over_float32_encode']:.3f}"
              f"  (goal <= 0.5)")
        print(f"unchanged re-run  {rerun_s:8.3f} s   = {100 * result['rerun_share_of_first']:.2f}% of the first run  (goal < 5%)")


if __name__ == "__main__":
    main()
