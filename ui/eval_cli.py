"""`helpmate eval ...`: quality measured on public benchmarks, printed as numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from assistant.cli.errors import fail, user_errors
from assistant.cli.evaluation import register as register_evaluation
from assistant.cli.sentiment import eval_sentiment
from assistant.config import get_settings

# assistant.retrieval.retriever's Mode, Fusion and DENSE_WEIGHT, spelled out so that `helpmate --help` does not import
# FAISS and BM25 (tests/assistant/retrieval/test_retrieval.py checks that they agree).
Mode = Literal["dense", "bm25", "hybrid"]
Fusion = Literal["minmax", "rrf"]
DENSE_WEIGHT = 0.5

eval_app = typer.Typer(help="Measure Helpmate's quality on public benchmarks.", no_args_is_help=True)


@eval_app.command("retrieval")
def retrieval(
    beir: Annotated[Path, typer.Option("--beir", help="BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv.",
                                       exists=True, file_okay=False)],
    split: Annotated[str, typer.Option("--split", help="Qrels file to score against: qrels/SPLIT.tsv.")] = "test",
    mode: Annotated[Mode, typer.Option("--mode", help="dense (FAISS), bm25, or hybrid (both fused).")] = "hybrid",
    fusion: Annotated[Fusion | None, typer.Option(
        "--fusion", help="Only with --mode hybrid: minmax (min-max normalised scores, weighted; the default) or "
                         "rrf (reciprocal rank fusion, k=60).")] = None,
    dense_weight: Annotated[float | None, typer.Option(
        "--dense-weight", min=0.0, max=1.0, help=f"Only with --mode hybrid and minmax fusion: weight of the dense side, "
                                                  f"0..1 (BM25 gets the rest; default {DENSE_WEIGHT}).")] = None,
    kb: Annotated[str | None, typer.Option("--kb", help="Knowledge base holding the corpus; default: beir- and the folder's name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object.")] = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: only on a terminal).")] = None,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of search on a BEIR dataset (document-level, as BEIR reports them).

    The corpus is ingested into its own knowledge base first. Ingestion is incremental: only the first run embeds the corpus.
    """
    from assistant.retrieval.retriever import Retriever
    from assistant.retrieval.evaluation import evaluate_beir
    from ingest.locking import IngestionLockedError
    from ingest.pipeline import ingest_paths

    corpus = beir / "corpus.jsonl"
    kb = kb or f"beir-{beir.resolve().name}"
    if not corpus.is_file():
        fail(f"{corpus} does not exist; --beir must be a BEIR folder with corpus.jsonl")
    if mode != "hybrid" and (fusion is not None or dense_weight is not None):
        fail(f"--fusion and --dense-weight only apply to --mode hybrid, not --mode {mode}")
    if fusion == "rrf" and dense_weight is not None:
        fail("--dense-weight weights min-max fusion; --fusion rrf has no weight")
    fusion = fusion or "minmax"
    dense_weight = DENSE_WEIGHT if dense_weight is None else dense_weight
    settings = get_settings()
    with user_errors(FileNotFoundError, IngestionLockedError, ValueError):
        summary = ingest_paths([corpus], kb, settings, show_progress=progress)
        if summary.failed:
            raise ValueError(f"could not ingest {corpus}: {summary.failed[0]['error']}")
        scores = evaluate_beir(Retriever(settings), kb, beir, split, mode, fusion, dense_weight)
    result = {**scores.as_dict(), "kb": kb, "split": split, "documents_ingested": summary.added + summary.updated,
              "ingest_seconds": round(summary.seconds, 3)}
    if as_json:
        typer.echo(json.dumps(result))
        return
    searched = mode if mode != "hybrid" else f"hybrid, {fusion} fusion" + (
        f", dense weight {dense_weight}" if fusion == "minmax" else "")
    typer.echo(f"{beir.resolve().name} ({split} split, {scores.queries} queries) in knowledge base {kb}, mode {searched}")
    for label, value in (("nDCG@10", scores.ndcg_at_10), ("Recall@100", scores.recall_at_100), ("MRR@10", scores.mrr_at_10)):
        typer.echo(f"  {label:<11} {value:.4f}")
    typer.echo(f"  searched in {scores.seconds:.1f} s ({scores.queries / scores.seconds:.0f} queries/s)" if scores.seconds
               else "  searched in 0 s")


eval_app.command("sentiment")(eval_sentiment)
register_evaluation(eval_app)
