"""The periodic job: export → train → evaluate → promote, safe to run from cron.

A lock file in the data directory keeps two runs from overlapping (the second one returns at once
with a reason); a run with fewer than ``min_new_feedback`` approved ratings since the last training
is a no-op. Customers' feedback counts once an operator approves it: a rating approved after the
last export counts as new even though its id is older than what that export held, since the next
export is the first to include it. Every step is logged through ``echo``; the result is what `helpmate finetune run --json` prints.

A candidate is trained on the whole snapshot from the base model (or from the grounded
answerer with ``HELPMATE_ANSWERER=adapter``), and judged against the model that answers now
(``assistant.llm.versions.active_model``: the promoted version, else the default model).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import select

from assistant.config import Settings
from assistant.conversations.feedback import count_feedback
from assistant.database import session_scope
from assistant.database.models import ModelVersion
from assistant.llm.versions import active_model, answerer_adapter, feedback_trained_through
from assistant.modelstore import LLM_NAME, require_llm
from finetune.evaluation import evaluate, local_generator, write_report
from finetune.export import export_feedback, snapshot_source
from finetune.registry import new_version_name, promote, record_candidate, set_evaluation
from finetune.training import train_lora

Echo = Callable[[str], None]
EVALUATION_RECORD = "evaluation.json"


@dataclass
class TrainOptions:
    rank: int = 8
    alpha: int = 16
    lr: float = 1e-3
    epochs: int = 3
    batch_size: int = 2  # on CPU, activation memory grows with batch x prompt length (about 10 GB at 4 x 600 tokens)
    seed: int = 0
    max_length: int = 2048


@dataclass
class LoopResult:
    promoted: bool
    version: str | None
    candidate: dict[str, Any] | None
    active: dict[str, Any] | None
    reason: str
    active_version: str = LLM_NAME
    new_feedback: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Busy(RuntimeError):
    """Another run holds the lock."""


@contextmanager
def run_lock(settings: Settings) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``<data_dir>/finetune.lock`` (released if the process dies)."""
    path = settings.data_dir / "finetune.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another `helpmate finetune run` holds {path}") from None
        handle.seek(0), handle.truncate(), handle.write(f"{os.getpid()}\n"), handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_feedback(settings: Settings) -> int:
    """Approved ratings that no training snapshot has held yet: newer than the last one's newest
    feedback id, or approved after it was exported (a customer's suggestion reviewed late)."""
    through = feedback_trained_through(settings)
    exported_at = None
    if through is not None:
        with session_scope(settings) as session:
            last = session.scalars(select(ModelVersion).where(ModelVersion.feedback_through_id == through)
                                   .order_by(ModelVersion.id.desc())).first()
        stamp = snapshot_source(Path(last.snapshot_path)).get("exported_at") if last and last.snapshot_path else None
        exported_at = datetime.fromisoformat(stamp) if stamp else (last.created_at if last else None)
    return count_feedback(settings, after_id=through, review_status="approved", reviewed_after=exported_at)


def run_loop(settings: Settings, min_new_feedback: int = 10, eval_share: float = 0.25,
             options: TrainOptions = TrainOptions(), margin: float = 0.02, tolerance: float = 0.05,
             vllm_url: str | None = None, device: str | None = None, echo: Echo = print) -> LoopResult:
    """One round of the loop; see the module docstring."""
    import time
    current = active_model(settings)  # a promoted version, else the default model
    active_name = current.name
    try:
        with run_lock(settings):
            new = new_feedback(settings)
            if new < min_new_feedback:
                reason = f"{new} new approved ratings since the last training, fewer than --min-new-feedback {min_new_feedback}; nothing to do"
                echo(reason)
                return LoopResult(False, None, None, None, reason, active_name, new)
            timings: dict[str, float] = {}
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            started = time.perf_counter()
            export = export_feedback(settings.data_dir / "snapshots" / stamp, settings, eval_share=eval_share)
            timings["export"] = round(time.perf_counter() - started, 1)
            manifest = export.manifest
            if export.pending_review:
                echo(f"{export.pending_review} customer ratings await review and were left out (`helpmate feedback list --pending`)")
            echo(f"exported {export.feedback_rows} ratings ({new} new) to {export.folder}: "
                 f"{manifest.examples('sft', 'train')} train / {manifest.examples('sft', 'eval')} eval examples, hash {manifest.content_hash[:12]}")

            name = new_version_name(manifest.content_hash, settings)
            base = require_llm(settings)
            started = time.perf_counter()
            result = train_lora(export.folder / "sft_train.jsonl", export.folder / "sft_eval.jsonl", base,
                                settings.adapters_dir / name, rank=options.rank, alpha=options.alpha, lr=options.lr,
                                epochs=options.epochs, batch_size=options.batch_size, seed=options.seed,
                                device=device or settings.device, max_length=options.max_length, show_progress=False,
                                init_adapter=answerer_adapter(settings))
            timings["train"] = round(time.perf_counter() - started, 1)
            training = {k: v for k, v in asdict(result).items() if k != "step_losses"}
            record_candidate(name, Path(result.output_dir), str(base), training, manifest.content_hash, export.folder,
                             export.feedback_through_id, settings=settings)
            echo(f"trained candidate {name}: train loss {result.train_loss:.4f}, eval loss "
                 f"{result.eval_loss_before} -> {result.eval_loss}, {result.examples_per_s:.2f} examples/s")

            started = time.perf_counter()
            report = evaluate(name, local_generator(settings, Path(result.output_dir)), active_name,
                              local_generator(settings, current.adapter_path), export.folder, margin=margin, tolerance=tolerance)
            timings["evaluate"] = round(time.perf_counter() - started, 1)
            write_report(report, Path(result.output_dir) / EVALUATION_RECORD)
            metrics = {"candidate": report.candidate_metrics, "active": report.active_metrics, "against": active_name,
                       "gain": report.decision.gain, "margin": margin, "tolerance": tolerance}
            echo(f"evaluated {name} against {active_name}: {report.decision.reason}")
            if not report.decision.promote:
                set_evaluation(name, metrics, report.decision.reason, settings=settings)
                return LoopResult(False, name, report.candidate_metrics, report.active_metrics, report.decision.reason,
                                  active_name, new, timings)
            set_evaluation(name, metrics, settings=settings)
            promote(name, settings, vllm_url, reason=report.decision.reason)
            echo(f"promoted {name}" + (f" (loaded into {vllm_url})" if vllm_url else ""))
            return LoopResult(True, name, report.candidate_metrics, report.active_metrics, report.decision.reason, name, new, timings)
    except Busy as error:
        echo(str(error))
        return LoopResult(False, None, None, None, str(error), active_name)
