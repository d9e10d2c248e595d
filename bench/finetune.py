"""LoRA training throughput with the packaged model, on examples shaped like real feedback.

Ingests ``demo/helpcenter`` into a fresh data directory and builds one feedback record per
question of ``demo/feedback.csv`` (the corrected answer where there is one, else an answer rated
up) and of ``demo/questions.jsonl`` (the reference answer), each with the passages the assistant
retrieves for it, in the assistant's own prompt. These go through the real snapshot export
(redaction, de-duplication), and the supervised examples are repeated until there are
``--examples`` of them. Then one LoRA training run prints examples/s and tokens/s (prompt and
answer tokens, padding not counted; model loading not timed).

    python bench/finetune.py --examples 64 [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
from bench.benchlib import share_checkout_models  # noqa: E402

share_checkout_models()


def feedback_items(feedback: Path, questions: Path) -> list[tuple[str, str]]:
    """(question, answer to learn) pairs from the demo feedback and evaluation questions."""
    items = []
    if feedback.exists():
        with open(feedback, newline="", encoding="utf-8") as rows:
            for row in csv.DictReader(rows):
                answer = row["corrected_answer"].strip() or (row["answer"].strip() if row["rating"] == "up" else "")
                if answer:
                    items.append((row["question"], answer))
    for line in questions.read_text(encoding="utf-8").splitlines():
        if line.strip() and (item := json.loads(line))["answer"]:
            items.append((item["question"], item["answer"]))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=64, help="training examples (default 64)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", type=Path, default=REPO / "demo" / "helpcenter")
    parser.add_argument("--feedback", type=Path, default=REPO / "demo" / "feedback.csv")
    parser.add_argument("--questions", type=Path, default=REPO / "demo" / "questions.jsonl")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HELPMATE_DATA_DIR"] = tmp
        os.environ.pop("HELPMATE_DATABASE_URL", None)
        from assistant.config import get_settings
        from assistant.modelstore import require_llm
        from assistant.retrieval.retriever import Retriever
        from finetune.dataset import FeedbackRecord, read_jsonl, write_snapshot
        from finetune.training import train_lora
        from ingest.pipeline import ingest_paths

        get_settings.cache_clear()
        settings = get_settings()
        base = require_llm(settings)
        summary = ingest_paths([args.docs], "demo", settings, show_progress=False)
        if summary.failed:
            raise SystemExit(f"could not ingest {summary.failed}")
        items = feedback_items(args.feedback, args.questions)
        hits = Retriever(settings).search_many([q for q, _ in items], "demo", k=settings.answer_passages, mode="hybrid")
        records = [FeedbackRecord(f"bench-{i}", question=q, passages=tuple(h), answer=a, label="good")
                   for i, ((q, a), h) in enumerate(zip(items, hits))]
        snapshot = Path(tmp) / "snapshot"
        write_snapshot(records, snapshot, eval_share=0.0)
        distinct = read_jsonl(snapshot / "sft_train.jsonl")
        train = Path(tmp) / "train.jsonl"
        with open(train, "w", encoding="utf-8") as out:
            for example in itertools.islice(itertools.cycle(distinct), args.examples):
                out.write(json.dumps(example, ensure_ascii=False) + "\n")
        result = train_lora(train, None, base, Path(tmp) / "adapter", rank=args.rank, epochs=args.epochs,
                            batch_size=args.batch_size, device=args.device, show_progress=not args.json)

    report = {
        "examples": result.train_examples, "distinct_examples": len(distinct), "epochs": args.epochs,
        "batch_size": args.batch_size, "rank": args.rank, "steps": result.steps, "device": args.device,
        "threads": torch.get_num_threads(), "tokens": result.train_tokens,
        "tokens_per_example": round(result.train_tokens / (result.train_examples * args.epochs), 1),
        "duration_s": result.duration_s, "examples_per_s": result.examples_per_s, "tokens_per_s": result.tokens_per_s,
        "train_loss_first_step": round(result.step_losses[0], 4), "train_loss_last_epoch": round(result.train_loss, 4),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['examples']} examples ({report['distinct_examples']} distinct, {report['tokens_per_example']} tokens each on average), "
          f"{report['steps']} steps of {args.batch_size}, rank {args.rank}, {args.device}, {report['threads']} threads")
    print(f"training      {result.duration_s:8.1f} s")
    print(f"throughput    {result.examples_per_s:8.2f} examples/s   {result.tokens_per_s:8.1f} tokens/s")
    print(f"loss          {report['train_loss_first_step']:.4f} (first step) -> {report['train_loss_last_epoch']:.4f} (last epoch)")


if __name__ == "__main__":
    main()
