"""Many users at once: N concurrent conversations through the full agent path against a vLLM server.

The demo help center (``demo/helpcenter``) is ingested into a fresh data directory and a vLLM
server is started for the run (``helpmate serve-model``'s machinery) unless ``--base-url`` names a
running one. At each concurrency N (1, 2, 4, 8, 16, 32 by default) N threads each hold
conversations: a new conversation of a customer (``customer_conversation``), then two turns through
``SupportAgent(settings).respond`` (store the message with its sentiment, route, retrieve, prompt,
generate on vLLM, support check, store the reply): a question and its follow-up from
``bench/followups.jsonl``. Every thread runs ``max(1, --conversations // N)`` conversations, so
each level does about the same number of turns. Reported per N: turns per second (throughput),
p50/p95 turn latency, reply kinds and errors. The run stops after the first N whose p95 is more
than ``--degrade`` (3) times the p95 at N=1: latency has degraded.

The database is SQLite in the data directory by default (what one machine runs); ``--postgres
URL`` runs it on a fresh schema of that PostgreSQL server (dropped afterwards), with the pool
settings ``HELPMATE_DB_POOL_SIZE`` / ``HELPMATE_DB_MAX_OVERFLOW``.

    python bench/load.py [--levels 1 2 4 8 16 32] [--conversations 16] [--base-url URL] [--postgres URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.benchlib import customer_conversation, percentile, publish, share_checkout_models, vllm_server  # noqa: E402


def run_level(agent, dialogues: list[tuple[str, str]], concurrency: int, conversations: int) -> dict:
    """``concurrency`` threads, each running ``conversations // concurrency`` two-turn conversations."""
    per_thread = max(1, conversations // concurrency)
    latencies: list[float] = []
    kinds: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def worker(slot: int) -> None:
        for i in range(per_thread):
            first, follow_up = dialogues[(slot * per_thread + i) % len(dialogues)]
            try:
                conversation, customer = customer_conversation(agent, "demo", "chat")
                for text in (first, follow_up):
                    started = time.perf_counter()
                    reply = agent.respond(conversation, text, caller=customer)
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        kinds[reply.kind] += 1
            except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
                with lock:
                    errors.append(f"{type(error).__name__}: {error}"[:200])

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"concurrency": concurrency, "conversations": per_thread * concurrency, "turns": len(latencies),
            "seconds": round(elapsed, 2), "turns_per_s": round(len(latencies) / elapsed, 3),
            "p50_s": round(statistics.median(ordered), 3) if ordered else None,
            "p95_s": round(percentile(ordered, 0.95), 3) if ordered else None,
            "kinds": dict(kinds), "errors": len(errors), "first_errors": errors[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--conversations", type=int, default=16, help="Conversations per level (at least one per thread).")
    parser.add_argument("--degrade", type=float, default=3.0, help="Stop after the first level whose p95 exceeds this times N=1's.")
    parser.add_argument("--base-url", help="A running vLLM server (…/v1); default: start one for this run.")
    parser.add_argument("--postgres", help="Run the database on a fresh schema of this PostgreSQL URL.")
    parser.add_argument("--json", action="store_true", help="Print the results as one JSON object.")
    args = parser.parse_args()

    from assistant.agent import SupportAgent
    from assistant.config import get_settings
    from assistant.database import dispose_engines
    from ingest.pipeline import ingest_paths

    dialogues = []
    for line in (REPO / "bench" / "followups.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            first = next(text for role, text in record["history"] if role == "user")
            dialogues.append((first, record["question"]))

    schema = admin = None
    with tempfile.TemporaryDirectory() as tmp:
        share_checkout_models()
        os.environ["HELPMATE_DATA_DIR"] = tmp
        if args.postgres:
            import sqlalchemy

            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = sqlalchemy.create_engine(args.postgres)
            with admin.begin() as connection:
                connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
            sep = "&" if "?" in args.postgres else "?"
            os.environ["HELPMATE_DATABASE_URL"] = f"{args.postgres}{sep}options=-csearch_path%3D{schema}"
        else:
            os.environ.pop("HELPMATE_DATABASE_URL", None)
        get_settings.cache_clear()
        base = get_settings()
        try:
            summary = ingest_paths([REPO / "demo" / "helpcenter"], "demo", base, show_progress=False)
            if summary.failed:
                raise SystemExit(f"could not ingest the demo help center: {summary.failed}")
            publish(base, "demo")
            with vllm_server(base, args.base_url) as base_url:
                settings = base.model_copy(update={"llm_backend": "vllm", "vllm_base_url": base_url, "vllm_timeout_s": 600.0})
                agent = SupportAgent(settings)
                warm, customer = customer_conversation(agent, "demo", "chat")
                for text in dialogues[0]:
                    agent.respond(warm, text, caller=customer)

                rows: list[dict] = []
                for level in args.levels:
                    row = run_level(agent, dialogues, level, max(level, args.conversations))
                    rows.append(row)
                    print(f"N={level:<3d} {row['turns_per_s']:6.2f} turns/s  p50 {row['p50_s']:6.2f} s  p95 {row['p95_s']:6.2f} s  "
                          f"errors {row['errors']}  kinds {row['kinds']}", file=sys.stderr, flush=True)
                    if row["p95_s"] is None or (level > 1 and rows[0]["p95_s"] and row["p95_s"] > args.degrade * rows[0]["p95_s"]):
                        break
        finally:
            dispose_engines()
            if admin is not None:
                import sqlalchemy

                with admin.begin() as connection:
                    connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()

    database = "postgresql" if args.postgres else "sqlite"
    output = {"database": database, "pool": [base.db_pool_size, base.db_max_overflow], "model": settings.vllm_model or "served base model",
              "machine": f"{os.cpu_count()} CPUs", "degrade_factor": args.degrade, "levels": rows}
    if args.json:
        print(json.dumps(output, indent=2))
        return
    print(f"full agent path on vLLM ({database}, {os.cpu_count()} CPUs); two turns per conversation")
    print(f"{'N':>3s} {'conv':>5s} {'turns':>6s} {'turns/s':>8s} {'p50 s':>7s} {'p95 s':>7s} {'p95/N=1':>8s} {'errors':>6s}  kinds")
    for row in rows:
        ratio = row["p95_s"] / rows[0]["p95_s"] if rows[0]["p95_s"] and row["p95_s"] else float("nan")
        print(f"{row['concurrency']:3d} {row['conversations']:5d} {row['turns']:6d} {row['turns_per_s']:8.2f} "
              f"{row['p50_s']:7.2f} {row['p95_s']:7.2f} {ratio:8.2f} {row['errors']:6d}  {row['kinds']}")
    last = rows[-1]
    if len(rows) > 1 and last["p95_s"] and rows[0]["p95_s"] and last["p95_s"] > args.degrade * rows[0]["p95_s"]:
        print(f"latency degraded at N={last['concurrency']} (p95 > {args.degrade:g}x N=1); best throughput "
              f"{max(r['turns_per_s'] for r in rows):.2f} turns/s")
    else:
        print(f"no degradation beyond {args.degrade:g}x up to N={last['concurrency']}")


if __name__ == "__main__":
    main()
