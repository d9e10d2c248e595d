"""`helpmate finetune …`: the fine-tuning subcommands (the `ui` package assembles them into one command)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from assistant.access import Caller, audit
from assistant.cli.errors import fail
from assistant.config import get_settings
from assistant.modelstore import ModelMissingError, require_llm
from finetune.dataset import read_manifest
from finetune.training import DEFAULT_TARGETS, MAX_LORA_RANK, train_lora

finetune_app = typer.Typer(help="Fine-tune the language model on customers' feedback (LoRA adapters).", no_args_is_help=True)


@finetune_app.command("train")
def train(
    dataset: Annotated[Path, typer.Argument(help="A feedback snapshot folder (with manifest.json and sft_train.jsonl).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="New folder for the adapter (default: a folder named after the version in <data_dir>/adapters).")] = None,
    rank: Annotated[int, typer.Option(min=1, max=MAX_LORA_RANK, help="LoRA rank (vLLM serves up to 16).")] = 8,
    alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha; the update is scaled by alpha / rank.")] = 16,
    targets: Annotated[str, typer.Option(help="Comma-separated module names that get LoRA matrices.")] = ",".join(DEFAULT_TARGETS),
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (AdamW, linear warm-up and decay).")] = 2e-4,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training examples.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per optimiser step.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed for the LoRA initialisation and the shuffling.")] = 0,
    device: Annotated[str | None, typer.Option(help="torch device: cpu or cuda; float32 on both (default: HELPMATE_DEVICE).")] = None,
    max_length: Annotated[int, typer.Option(min=16, help="Longest example in tokens; longer ones are skipped.")] = 2048,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training record as JSON.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar with the loss.")] = True,
) -> None:
    """Train a LoRA adapter on a snapshot's supervised examples, with answer-only loss.

    Writes adapter_config.json, adapter_model.safetensors and training.json (data hashes,
    hyperparameters, losses, speed) into a new folder that vLLM and peft both load, and records
    the run as a model version with status candidate (`helpmate finetune evaluate` judges it).
    Training starts from the bare base model (--rank, --alpha and --targets apply), or continues
    from the grounded answerer (assistant/llm/answerer) with HELPMATE_ANSWERER=adapter.
    """
    from assistant.llm.versions import answerer_adapter
    from finetune.export import snapshot_source
    from finetune.registry import new_version_name, record_candidate

    settings = get_settings()
    try:
        manifest = read_manifest(dataset)
        base = require_llm(settings)
        target_modules = tuple(t.strip() for t in targets.split(",") if t.strip())
        name = new_version_name(manifest.content_hash, settings)
        result = train_lora(
            dataset / "sft_train.jsonl", dataset / "sft_eval.jsonl", base,
            output or settings.adapters_dir / name,
            rank=rank, alpha=alpha, targets=target_modules, lr=lr, epochs=epochs, batch_size=batch_size,
            seed=seed, device=device or settings.device, max_length=max_length, show_progress=progress,
            init_adapter=answerer_adapter(settings),
        )
        training = {k: v for k, v in asdict(result).items() if k != "step_losses"}
        record_candidate(name, Path(result.output_dir), str(base), training, manifest.content_hash, dataset,
                         snapshot_source(dataset).get("feedback_through_id"), settings=settings)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError, ModelMissingError) as error:
        fail(error)
    if as_json:
        typer.echo(json.dumps({**asdict(result), "version": name}))
        return
    typer.echo(f"version:       {name} (candidate)")
    eval_line = "no eval examples" if result.eval_loss is None else f"{result.eval_loss_before:.4f} -> {result.eval_loss:.4f}"
    typer.echo(f"adapter:       {result.output_dir}")
    typer.echo(f"examples:      {result.train_examples} train, {result.eval_examples} eval"
               + (f", {result.skipped_too_long} skipped (over {max_length} tokens)" if result.skipped_too_long else ""))
    typer.echo(f"train loss:    {result.train_loss:.4f} (last epoch, {result.steps} steps)")
    typer.echo(f"eval loss:     {eval_line}")
    typer.echo(f"speed:         {result.examples_per_s:.2f} examples/s, {result.tokens_per_s:.0f} tokens/s, {result.duration_s:.1f} s")


@finetune_app.command("train-answerer")
def train_answerer_cmd(
    squad: Annotated[Path, typer.Option(help="SQuAD 2.0 dev-v2.0.json (CC BY-SA 4.0).")] = Path("../shared/datasets/squad2/dev-v2.0.json"),
    dstc9: Annotated[Path, typer.Option(help="DSTC9 track 1 test folder (knowledge.json, labels.json; Apache-2.0).")] = Path("../shared/datasets/dstc9_grounded_test"),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for the adapter and metadata.json (default: assistant/llm/answerer, which HELPMATE_ANSWERER=adapter uses).")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Data, checkpoints and cached answers (default: <data_dir>/answerer-training); run again to resume.")] = None,
    examples: Annotated[int, typer.Option(min=8, help="Training examples (one epoch of them fits an hour on 2 CPU cores).")] = 1200,
    held_out: Annotated[int, typer.Option(min=0, help="Held-out examples answered by the base model and the adapter.")] = 240,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    rank: Annotated[int, typer.Option(min=1, max=MAX_LORA_RANK)] = 8,
    first_layer: Annotated[int, typer.Option(min=0, help="Layers below this get no LoRA matrices (faster backward pass).")] = 10,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(min=0, help="torch threads (0: torch's default, every core).")] = 0,
    evaluate: Annotated[bool, typer.Option("--evaluate/--no-evaluate", help="Measure base and adapter on the held-out parts.")] = True,
    restart: Annotated[bool, typer.Option("--restart", help="Discard the checkpoint and cached answers in the work folder.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train the grounded-answer adapter on SQuAD 2.0 and DSTC9 in Helpmate's prompt format, resumably.

    Held-out SQuAD articles and DSTC9 entities are never trained on; the base model and the adapter
    answer them and the metrics go into metadata.json beside the adapter, with data hashes, settings,
    losses, wall time and the machine's load. Run the same command again to continue an interrupted run.
    """
    import shutil
    import sys

    import torch

    from assistant.llm.versions import ANSWERER_DIR
    from finetune.answerer import DataOptions, train_answerer
    from finetune.answerer_training import AnswererConfig

    settings = get_settings()
    if threads:
        torch.set_num_threads(threads)
    work = work_dir or settings.data_dir / "answerer-training"
    if restart:
        for name in ("checkpoint", "adapter", "eval"):
            shutil.rmtree(work / name, ignore_errors=True)
    config = AnswererConfig(rank=rank, alpha=2 * rank, first_layer=first_layer, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed)
    try:
        metadata = train_answerer(settings, DataOptions(squad, dstc9, examples, held_out, seed), config, output or ANSWERER_DIR,
                                  work, evaluate, progress, command=" ".join(["helpmate", *sys.argv[1:]]),
                                  echo=lambda line: typer.echo(line, err=True))
    except (FileNotFoundError, ValueError, RuntimeError, ModelMissingError) as error:
        fail(error)
    scores = metadata.get("held_out_metrics") or {}
    for label in ("base", "adapter"):
        for source, values in (scores.get(label) or {}).items():
            typer.echo(f"{label:<8}{source:<7} F1 {values['token_f1']}  first citation {values['first_citation']}  "
                       f"refusal precision {values['refusal_precision']}  recall {values['refusal_recall']}")


def _vllm_url(option: str | None) -> str | None:
    """The server to load adapters into: the option (empty: none), else HELPMATE_VLLM_BASE_URL when
    the assistant uses the vLLM backend, else none (the local backend reads the registry only)."""
    if option is not None:
        return option or None
    settings = get_settings()
    return settings.vllm_base_url if settings.llm_backend == "vllm" else None


VllmUrl = Annotated[str | None, typer.Option("--vllm-url", help="vLLM server to load the adapter into (default: HELPMATE_VLLM_BASE_URL "
                                                                "when HELPMATE_LLM_BACKEND=vllm; \"\" for none).")]


@finetune_app.command("export")
def export(
    output: Annotated[Path | None, typer.Argument(help="New snapshot folder (default: a folder named after the time in <data_dir>/snapshots).")] = None,
    eval_share: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of conversations held out for evaluation.")] = 0.25,
    cite: Annotated[bool, typer.Option("--cite/--no-cite", help="Add the passage citations the assistant would give to corrected answers.")] = True,
    from_conversations: Annotated[bool, typer.Option("--from-conversations", help="Export imported conversations' agent replies "
                                                     "(customer question -> agent reply, passages retrieved now) instead of feedback.")] = False,
    kb: Annotated[str | None, typer.Option("--kb", help="With --from-conversations: only this knowledge base's conversations.")] = None,
) -> None:
    """Export the approved feedback, redacted, as SFT, preference and KTO files split by conversation.

    Customer feedback awaiting review is left out (and counted): it reaches neither the training
    files nor the held-out split the gate judges on until `helpmate feedback approve` approves it.
    With --from-conversations each customer question and the agent's reply that followed becomes an
    example instead; greetings, hand-offs and replies the passages do not support are left out and
    counted. Train and gate the snapshot as feedback: `helpmate finetune train SNAPSHOT`, then
    `helpmate finetune evaluate --promote`.
    """
    from datetime import datetime, timezone

    from finetune.export import export_feedback

    settings = get_settings()
    folder = output or settings.data_dir / "snapshots" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if from_conversations:
        _export_conversations(folder, kb, eval_share)
        return
    try:
        result = export_feedback(folder, settings, eval_share=eval_share, cite_answers=cite)
    except (ValueError, FileExistsError) as error:
        fail(error)
    m = result.manifest
    typer.echo(f"snapshot:      {result.folder}")
    typer.echo(f"feedback:      {result.feedback_rows} ratings (through id {result.feedback_through_id}), "
               f"{result.citations_added} answers given citations")
    if result.pending_review:
        typer.echo(f"awaiting review: {result.pending_review} customer ratings left out (`helpmate feedback list --pending`, "
                   "then `helpmate feedback approve ID --by NAME` or `reject`)")
    for view in ("sft", "preference", "kto"):
        typer.echo(f"{view + ':':<14} {m.examples(view, 'train')} train, {m.examples(view, 'eval')} eval")
    typer.echo(f"redactions:    {m.redactions or 'none'}")
    typer.echo(f"content hash:  {m.content_hash}")


def _export_conversations(folder: Path, kb: str | None, eval_share: float) -> None:
    from finetune.conversation_export import export_conversations

    try:
        result = export_conversations(folder, get_settings(), kb, eval_share, echo=lambda line: typer.echo(line, err=True))
    except (ValueError, FileExistsError) as error:
        fail(error)
    m, counts = result.manifest, result.counts
    typer.echo(f"snapshot:      {result.folder}")
    typer.echo(f"agent replies: {result.pairs}: {counts['kept']} kept, left out {counts['greeting']} greetings, "
               f"{counts['hand-off']} hand-offs, {counts['unsupported']} not supported by the passages")
    typer.echo(f"sft:           {m.examples('sft', 'train')} train, {m.examples('sft', 'eval')} eval "
               f"({m.duplicates_dropped['sft']} duplicates dropped)")
    typer.echo(f"redactions:    {m.redactions or 'none'}")
    typer.echo(f"content hash:  {m.content_hash}")


@finetune_app.command("evaluate")
def evaluate_(
    version: Annotated[str | None, typer.Argument(help="Candidate version (default: the newest candidate).")] = None,
    margin: Annotated[float, typer.Option(help="How much the candidate's held-out feedback score must beat the active model's.")] = 0.02,
    tolerance: Annotated[float, typer.Option(help="How much a regression-set metric may drop.")] = 0.05,
    promote_: Annotated[bool, typer.Option("--promote", help="Promote the candidate when the gate passes.")] = False,
    vllm_url: VllmUrl = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score a candidate and the active model on held-out feedback and the regression set (same decoding)."""
    from sqlalchemy import select

    from assistant.database import session_scope
    from assistant.database.models import ModelVersion
    from assistant.llm.versions import active_model
    from finetune.evaluation import evaluate, local_generator, write_report
    from finetune.registry import promote, set_evaluation

    settings = get_settings()
    with session_scope(settings) as session:
        query = select(ModelVersion).where(ModelVersion.status == "candidate").order_by(ModelVersion.id.desc())
        if version:
            query = select(ModelVersion).where(ModelVersion.name == version)
        row = session.scalars(query).first()
    if row is None:
        fail(ValueError(f"no model version {version!r}" if version else "no candidate to evaluate; train one with `helpmate finetune train`"))
    if row.status != "candidate":
        fail(ValueError(f"{row.name} is {row.status}, not a candidate"))
    active = active_model(settings)  # the promoted version, else the default model
    try:
        report = evaluate(row.name, local_generator(settings, Path(row.adapter_path)), active.name,
                          local_generator(settings, active.adapter_path),
                          Path(row.snapshot_path) if row.snapshot_path else None, margin=margin, tolerance=tolerance)
    except ValueError as error:  # a snapshot exported before feedback was reviewed
        fail(error)
    write_report(report, Path(row.adapter_path) / "evaluation.json")
    metrics = {"candidate": report.candidate_metrics, "active": report.active_metrics, "against": report.active,
               "gain": report.decision.gain, "margin": margin, "tolerance": tolerance}
    set_evaluation(row.name, metrics, None if report.decision.promote else report.decision.reason, settings=settings)
    if report.decision.promote and promote_:
        try:
            promote(row.name, settings, _vllm_url(vllm_url), reason=report.decision.reason)
        except RuntimeError as error:
            fail(error)
        audit(settings, Caller.local_admin(), "model.promote", row.name, {"by": "finetune evaluate --promote"})
    if as_json:
        typer.echo(json.dumps({"version": row.name, "promote": report.decision.promote, "reason": report.decision.reason,
                               "candidate": report.candidate_metrics, "active": report.active_metrics}))
        return
    _print_metrics(row.name, report.candidate_metrics, report.active, report.active_metrics)
    typer.echo(("PASS: " if report.decision.promote else "FAIL: ") + report.decision.reason)


def _print_metrics(candidate: str, cand: dict, active: str, act: dict) -> None:
    typer.echo(f"{'metric':<20}{candidate[:28]:>30}{active[:28]:>30}")
    for key in ("feedback_examples", "feedback_score", "feedback_f1", "feedback_rouge_l", "grounded_f1", "citation_accuracy",
                "refusal_accuracy", "general_f1"):
        typer.echo(f"{key:<20}{str(cand.get(key)):>30}{str(act.get(key)):>30}")


@finetune_app.command("promote")
def promote_cmd(
    version: Annotated[str, typer.Argument(help="The version to make active.")],
    vllm_url: VllmUrl = None,
) -> None:
    """Load a version into the running vLLM server (new name, no restart) and make it the one the assistant uses."""
    from finetune.registry import promote

    settings = get_settings()
    try:
        row = promote(version, settings, _vllm_url(vllm_url), reason="promoted by hand")
    except RuntimeError as error:
        fail(error)
    audit(settings, Caller.local_admin(), "model.promote", row.name, {"by": "finetune promote"})
    typer.echo(f"{row.name} is active")


@finetune_app.command("rollback")
def rollback_cmd(vllm_url: VllmUrl = None) -> None:
    """Return to the version promoted before the active one (or to the default model)."""
    from assistant.llm.versions import default_model
    from finetune.registry import rollback

    settings = get_settings()
    try:
        row = rollback(settings, _vllm_url(vllm_url))
    except RuntimeError as error:
        fail(error)
    fallback = default_model(settings).name  # the base model, or the answerer (HELPMATE_ANSWERER=adapter)
    audit(settings, Caller.local_admin(), "model.rollback", row.name if row else fallback, {"by": "finetune rollback"})
    typer.echo(f"{row.name if row else fallback + ' (default model)'} is active")


@finetune_app.command("versions")
def versions() -> None:
    """The trained versions with their status and evaluation."""
    from assistant.llm.versions import list_versions

    for row in list_versions(get_settings()):
        score = ((row.evaluation_metrics or {}).get("candidate") or {}).get("feedback_score")
        typer.echo(f"{row.name:<32} {row.status:<10} score {score}  {row.reason or ''}")


@finetune_app.command("run")
def run(
    min_new_feedback: Annotated[int, typer.Option(min=0, help="Do nothing unless this many approved ratings came in since the last training.")] = 10,
    eval_share: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.25,
    margin: Annotated[float, typer.Option()] = 0.02,
    tolerance: Annotated[float, typer.Option()] = 0.05,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    batch_size: Annotated[int, typer.Option(min=1)] = 2,
    rank: Annotated[int, typer.Option(min=1, max=MAX_LORA_RANK)] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    vllm_url: VllmUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"promoted", "version", "candidate", "active", "reason"}.')] = False,
) -> None:
    """Export, train, evaluate and promote in one go (cron-safe: lock file, no-op on too little feedback)."""
    from finetune.loop import TrainOptions, run_loop

    echo = (lambda line: typer.echo(line, err=True)) if as_json else typer.echo
    settings = get_settings()
    try:
        result = run_loop(settings, min_new_feedback, eval_share,
                          TrainOptions(rank=rank, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed),
                          margin, tolerance, _vllm_url(vllm_url), echo=echo)
    except (ValueError, RuntimeError, FileNotFoundError, ModelMissingError) as error:
        fail(error)
    if result.promoted:
        audit(settings, Caller.local_admin(), "model.promote", result.version, {"by": "finetune run", "reason": result.reason})
    if as_json:
        typer.echo(json.dumps({"promoted": result.promoted, "version": result.version, "candidate": result.candidate,
                               "active": result.active, "reason": result.reason, "active_version": result.active_version,
                               "new_feedback": result.new_feedback, "timings_s": result.timings_s}))
        return
    if result.candidate:
        _print_metrics(result.version or "candidate", result.candidate, "active", result.active or {})
    typer.echo(("PROMOTED " + str(result.version) if result.promoted else "not promoted") + f": {result.reason}")
