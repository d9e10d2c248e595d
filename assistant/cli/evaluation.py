"""`helpmate eval support` and `helpmate eval answers`: the support check and the answers, measured.

Both run on files a team can write itself (formats in ``assistant.answering.support_data`` and
``assistant.answering.answer_eval``), so a deployment can calibrate the check's threshold on its
own agents' answers and compare models on its own questions; ``--dstc9`` builds the support
cases from the public DSTC9 human replies instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from assistant.cli.errors import fail, user_errors
from assistant.cli.options import ProgressOption, progress_bars
from assistant.config import get_settings

Part = Literal["held_out", "fit", "all"]
Backend = Literal["local", "vllm"]


def support(
    file: Annotated[Optional[Path], typer.Option("--file", help="Labelled answers, JSONL: passages, answer, accept "
                                                 "(true/false), optional question.", exists=True, dir_okay=False)] = None,
    dstc9: Annotated[Optional[Path], typer.Option("--dstc9", help="DSTC9 track 1 test folder (knowledge.json, labels.json): "
                                                  "human replies given their own snippet (accept) and another entity's "
                                                  "(reject).", exists=True, file_okay=False)] = None,
    part: Annotated[Part, typer.Option("--part", help="--dstc9: the entity-split part to measure (held_out: never "
                                       "trained on).")] = "held_out",
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="--dstc9: sample this many replies (--seed).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="--dstc9: picks the other entity and the samples.")] = 0,
    threshold: Annotated[Optional[float], typer.Option("--threshold", min=0.0, max=1.0,
                                                       help="Verifier score a claim needs; default HELPMATE_SUPPORT_MIN_SCORE.")] = None,
    verifier: Annotated[Optional[Path], typer.Option("--verifier", help="Folder of other verifier weights (default: the "
                                                     "shipped ones).", file_okay=False)] = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="--dstc9: first train the verifier on the fit part and write "
                                          "it to --verifier (default: the shipped weights).")] = False,
    examples: Annotated[int, typer.Option("--examples", min=0, help="Wrong verdicts of each kind to print.")] = 0,
    sweep: Annotated[bool, typer.Option("--sweep", help="Also the verifier's rates at thresholds 0.1 to 0.9.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    progress: ProgressOption = None,
) -> None:
    """Accept and reject rates of the support check: the learned verifier beside the word-overlap rules it replaced.

    A good check accepts the answers that should be accepted and rejects the others; both rates
    are printed, per condition, with the check's time per answer.
    """
    from assistant.answering.grounding import Grounder
    from assistant.answering.support_data import dstc9_cases, read_cases
    from assistant.answering.support_eval import evaluate_support, threshold_sweep
    from assistant.answering.verifier import WEIGHTS_DIR, Verifier, VerifierFileError, get_verifier
    from assistant.embeddings import get_embedder

    if (file is None) == (dstc9 is None):
        fail("give either --file or --dstc9")
    if retrain and dstc9 is None:
        fail("--retrain trains on DSTC9's fit part: give --dstc9")
    settings = get_settings()
    threshold = settings.support_min_score if threshold is None else threshold
    bars = progress_bars(progress)
    embedder = get_embedder(settings)
    with user_errors(FileNotFoundError, ValueError, VerifierFileError, KeyError):
        if retrain:
            from assistant.answering.verifier_training import train_verifier

            train_verifier(settings, dstc9, verifier or WEIGHTS_DIR, seed,
                           progress=(lambda message: typer.echo(message, err=True)) if bars else None)
        model = Verifier.load(verifier) if verifier or retrain else get_verifier(embedder)
        cases = read_cases(file) if file else dstc9_cases(dstc9, part, seed, limit)
    result: dict = {"source": str(file or dstc9), "part": part if dstc9 else None, "cases": len(cases),
                    "threshold": threshold, "seed": seed if dstc9 else None, "limit": limit}
    for name, grounder in (("today", Grounder(embedder, method="overlap")),
                           ("helpmate", Grounder(embedder, threshold, verifier=model))):
        ticks = _ticker(len(cases), name) if bars else None
        result[name] = evaluate_support(cases, grounder, ticks, examples)
        if bars:
            print(file=sys.stderr)
    if sweep:
        result["sweep"] = threshold_sweep(cases, grounder, [round(0.1 * i, 1) for i in range(1, 10)])
    result["today"]["check"] = "word-overlap rules (before the verifier)"
    result["helpmate"]["check"] = f"learned verifier {model.metadata.get('created', '')}, threshold {threshold}"
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    typer.echo(f"{result['source']}: {len(cases)} labelled answers" + (f" ({part} part)" if dstc9 else ""))
    typer.echo(f"{'':28} {'today':>8} {'helpmate':>9}")
    rows = [("accepted (should accept)", "accepted"), ("rejected (should reject)", "rejected")]
    for label, key in rows:
        typer.echo(f"{label:28} {_rate(result['today'][key]):>8} {_rate(result['helpmate'][key]):>9}")
    for condition in result["helpmate"]["conditions"]:
        for label, key in rows:
            if result["helpmate"]["conditions"][condition][key] is not None:
                typer.echo(f"  {condition + ': ' + key:26} {_rate(result['today']['conditions'][condition][key]):>8} "
                           f"{_rate(result['helpmate']['conditions'][condition][key]):>9}")
    typer.echo(f"{'ms per answer (median)':28} {result['today']['ms_per_answer']['median']:>8} "
               f"{result['helpmate']['ms_per_answer']['median']:>9}")
    for row in result.get("sweep", []):
        typer.echo(f"  threshold {row['threshold']:.1f}: accepted {_rate(row['accepted'])}, rejected {_rate(row['rejected'])}")
    for kind, wrong in result["helpmate"].get("wrong", {}).items():
        for item in wrong:
            typer.echo(f"{kind}: {item['answer']!r} ({item['condition']}): {item['reason']}")


def answers(
    file: Annotated[Path, typer.Option("--file", help="Questions, JSONL: question, optional history, must_contain, "
                                       "expected_source, answerable, reference.", exists=True, dir_okay=False)],
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to answer from.")],
    backend: Annotated[Optional[Backend], typer.Option("--backend", help="local or vllm; default HELPMATE_LLM_BACKEND.")] = None,
    compare: Annotated[bool, typer.Option("--compare-overlap", help="Also judge the same model answers with the "
                                          "word-overlap rules used before the verifier.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, with every answer.")] = False,
    progress: ProgressOption = None,
) -> None:
    """Answer kinds, kept model answers, terms, citations, refusals, token-F1, ROUGE-L and latency on your questions.

    Every question goes through the assistant as in a chat (retrieval, refusal gate, model, support
    check); the model is loaded and warmed up before the timings start. Two ceilings show what
    retrieval allows: how often the expected source, and every expected term, are in the passages
    the model was shown.
    """
    from assistant.answering.answer_eval import answer_questions, read_questions, summarize
    from assistant.answering.assistant import Assistant
    from assistant.answering.grounding import Grounder
    from assistant.llm.base import ModelUnavailableError
    from assistant.retrieval.retriever import Retriever

    settings = get_settings()
    if backend:
        settings = settings.model_copy(update={"llm_backend": backend})
    with user_errors(FileNotFoundError, ValueError, ModelUnavailableError):
        questions = read_questions(file)
        assistant = Assistant(settings, Retriever(settings))
        assistant.retrieve(questions[0].question, kb)  # an unknown knowledge base says so before the model loads
        assistant.model.generate([{"role": "user", "content": "Hello"}])  # load and warm up outside the timings
        bars = progress_bars(progress)
        say = (lambda n, r: print(f"[{n}/{len(questions)}] {r['kind']:10} {r['latency_ms']:8.0f} ms  {r['question'][:60]}",
                                  file=sys.stderr)) if bars else None
        baseline = Grounder(assistant.retriever.embedder, method="overlap") if compare else None
        records = answer_questions(assistant, kb, questions, say, baseline)
    result = {"file": str(file), "kb": kb, "model": assistant.model.name, "backend": settings.llm_backend,
              "answer_min_relevance": settings.answer_min_relevance, "support_min_score": settings.support_min_score,
              **summarize(records, settings.answer_min_relevance)}
    if as_json:
        typer.echo(json.dumps({**result, "answers": records}, ensure_ascii=False))
        return
    typer.echo(f"{file}: {result['questions']} questions ({result['answerable']} answerable, {result['unanswerable']} "
               f"unanswerable) on knowledge base {kb}, model {result['model']}")
    typer.echo("  answer kinds: " + ", ".join(f"{k} {_rate(v)}" for k, v in result["kinds"].items()))
    for label, key in (("model answers kept by the support check", "model_answers_kept"),
                       ("answerable questions answered", "answerable_answered"),
                       ("answers containing every expected term", "term_containment"),
                       ("first citation is the expected source", "first_citation_accuracy"),
                       ("expected source among passages (ceiling)", "passages_hold_expected_source"),
                       ("every expected term in passages (ceiling)", "passages_hold_terms"),
                       ("unanswerable questions refused", "unanswerable_refused"),
                       ("token-F1 against references", "token_f1"), ("ROUGE-L against references", "rouge_l"),
                       ("model's own text: token-F1 (before the check)", "model_token_f1")):
        typer.echo(f"  {label:42} {_rate(result[key])}")
    if compare:
        typer.echo(f"  {'word-overlap rules: model answers kept':42} {_rate(result.get('baseline_model_answers_kept'))}")
        typer.echo(f"  {'word-overlap rules: containing every term':42} {_rate(result.get('baseline_term_containment'))}")
    typer.echo(f"  {'latency median / p90':42} {result['latency_ms_median']:.0f} / {result['latency_ms_p90']:.0f} ms")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ticker(total: int, name: str):
    def tick(done: int) -> None:
        if done == total or done % 25 == 0:
            print(f"\r{name}: {done}/{total}", end="", file=sys.stderr, flush=True)
    return tick


def register(app: typer.Typer) -> None:
    """Add `support` and `answers` to the `helpmate eval` group (``ui.eval_cli``)."""
    app.command("support")(support)
    app.command("answers")(answers)
