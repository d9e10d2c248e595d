"""`helpmate finetune train-answerer`: build the data, train, measure on held-out parts, ship the adapter.

One command makes the grounded-answer adapter that ``HELPMATE_ANSWERER=adapter`` loads from ``assistant/llm/answerer/``
(``assistant.llm.versions.ANSWERER_DIR``), and every step can be interrupted and run again:

1. **data** (``finetune.answerer_data``): the training and held-out examples, written to
   ``<work>/data`` with a manifest of the input files' hashes, the seed and the counts; reused when
   they match;
2. **training** (``finetune.answerer_training``): resumable LoRA training with checkpoints in
   ``<work>``;
3. **measurement** (``finetune.answerer_eval``): the base model and the adapter answer the held-out
   examples (cached per model, resumable);
4. **shipping**: the adapter's two files and ``metadata.json`` (data hashes, split rules, counts,
   settings, losses, wall time, the machine and its load, the held-out metrics, and the licence:
   trained on SQuAD 2.0, the adapter is an adaptation of it under CC BY-SA 4.0) are written to a
   new folder that is then renamed over the output folder.

The defaults fit the one-hour budget of a 2-core CPU (``DEFAULT_EXAMPLES``; BENCHMARKS.md records
the run). Training is float32 on the CPU; the held-out answers use the assistant's decoding.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from assistant.config import Settings
from assistant.llm.versions import ANSWERER_DIR, ANSWERER_NAME
from assistant.modelstore import LLM_NAME, LLM_PACKAGE, require_llm
from finetune.answerer_data import (GOLD_POSITION_WEIGHTS, REFUSAL, build_examples, file_sha256, read_examples, sample, squad_part,
                                    write_jsonl)
from finetune.answerer_eval import answer_all, metrics
from finetune.answerer_training import AnswererConfig, train_resumable

Echo = Callable[[str], None]
DEFAULT_EXAMPLES = 1200  # about 150 steps of 8: an hour of 2 idle CPU cores (BENCHMARKS.md)
DEFAULT_HELD_OUT = 240
TRAIN_DSTC9_SHARE, TRAIN_REFUSAL_SHARE = 0.3, 0.25
TARGET_FORMAT = "citation first: '[n] sentence(s).' or 'I don't know.'; answering passage placed by GOLD_POSITION_WEIGHTS"
HELD_OUT_DSTC9_SHARE, HELD_OUT_REFUSAL_SHARE = 0.4, 0.5
LICENCE = ("CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/): this adapter is an adaptation of SQuAD 2.0 "
           "(Rajpurkar, Jia & Liang 2018, 'Know What You Don't Know: Unanswerable Questions for SQuAD', ACL 2018; "
           "CC BY-SA 4.0; paragraphs from Wikipedia), shared under the same licence. Changes: SQuAD 2.0 dev paragraphs "
           "were cut into windows of 2-4 sentences, put into Helpmate's prompt format with other paragraphs of the same "
           "article, and the answer sentences (with a [n] citation) or \"I don't know.\" used as training targets for a "
           "LoRA adapter. Also trained on DSTC9 track 1 test replies (Apache-2.0, Amazon.com, Inc.; dialogues from "
           "MultiWOZ 2.1, MIT). Base model SmolLM2-135M-Instruct (Apache-2.0).")


@dataclass(frozen=True)
class DataOptions:
    squad: Path
    dstc9: Path
    examples: int = DEFAULT_EXAMPLES
    held_out: int = DEFAULT_HELD_OUT
    seed: int = 0


def _manifest(options: DataOptions) -> dict[str, Any]:
    return {"squad": {"file": options.squad.name, "sha256": file_sha256(options.squad)},
            "dstc9": {name: file_sha256(options.dstc9 / name) for name in ("knowledge.json", "labels.json")},
            "examples": options.examples, "held_out": options.held_out, "seed": options.seed, "target_format": TARGET_FORMAT,
            "gold_position_weights": list(GOLD_POSITION_WEIGHTS),
            "train_shares": {"dstc9": TRAIN_DSTC9_SHARE, "refusal": TRAIN_REFUSAL_SHARE},
            "held_out_shares": {"dstc9": HELD_OUT_DSTC9_SHARE, "refusal": HELD_OUT_REFUSAL_SHARE}}


def prepare_data(options: DataOptions, folder: Path, echo: Echo = print) -> dict[str, Any]:
    """Write ``train.jsonl`` and ``held_out.jsonl`` into ``folder`` (or reuse them) and return the manifest."""
    for path in (options.squad, options.dstc9 / "knowledge.json", options.dstc9 / "labels.json"):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; give the SQuAD 2.0 dev file with --squad and the DSTC9 folder with --dstc9")
    manifest = _manifest(options)
    path = folder / "manifest.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if {k: saved.get(k) for k in manifest} == manifest and all((folder / f).exists() for f in ("train.jsonl", "held_out.jsonl")):
            echo(f"data: reusing {folder}")
            return saved
    started = time.perf_counter()
    parts = {}
    for part, count, dstc9_share, refusal_share, seed in (
            ("train", options.examples, TRAIN_DSTC9_SHARE, TRAIN_REFUSAL_SHARE, options.seed),
            ("held_out", options.held_out, HELD_OUT_DSTC9_SHARE, HELD_OUT_REFUSAL_SHARE, options.seed + 1)):
        pool = build_examples(options.squad, options.dstc9, part, options.seed)
        chosen = sample(pool, count, seed, dstc9_share, refusal_share)
        sha = write_jsonl(chosen, folder / f"{part}.jsonl")
        parts[part] = {"file": f"{part}.jsonl", "sha256": sha, "examples": len(chosen), "pool": len(pool),
                       "by_kind": dict(sorted(Counter(f"{e.source}/{e.kind}" for e in chosen).items()))}
    manifest["parts"] = parts
    manifest["split"] = {
        "squad2": "an article is held out when the first byte of SHA-256 of its title is divisible by 5",
        "dstc9": "an entity is held out when the first byte of SHA-256 of 'domain/entity_id' is odd (taxi, train: "
                 "'domain/*/doc_id'), the rule of assistant.answering.support_data",
    }
    data = json.loads(options.squad.read_text(encoding="utf-8"))["data"]
    manifest["split"]["squad2_held_out_articles"] = sorted(a["title"] for a in data if squad_part(a["title"]) == "held_out")
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    echo(f"data: {parts['train']['examples']} training and {parts['held_out']['examples']} held-out examples "
         f"in {time.perf_counter() - started:.0f} s ({folder})")
    return manifest


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


def measure(settings: Settings, adapter_dir: Path, held_out: Path, cache_dir: Path, echo: Echo = print) -> dict[str, Any]:
    """Held-out metrics of the base model and of the adapter (``finetune.answerer_eval``)."""
    from finetune.evaluation import local_generator

    examples = read_examples(held_out)
    results = {}
    for label, adapter in (("base", None), ("adapter", adapter_dir)):
        answers = answer_all(local_generator(settings, adapter), examples, cache_dir / f"{label}.jsonl", echo=echo, label=label)
        results[label] = metrics(examples, answers)
    return results


def train_answerer(settings: Settings, data: DataOptions, config: AnswererConfig = AnswererConfig(),
                   output: Path = ANSWERER_DIR, work_dir: Path | None = None, evaluate: bool = True,
                   show_progress: bool = True, command: str = "", echo: Echo = print) -> dict[str, Any]:
    """All four steps (module docstring); returns the metadata written beside the adapter."""
    work = Path(work_dir or settings.data_dir / "answerer-training")
    base = require_llm(settings)
    load_start, wall_start = _load_average(), time.perf_counter()
    manifest = prepare_data(data, work / "data", echo)
    run = train_resumable(work / "data" / "train.jsonl", base, work, config, settings.device, show_progress, echo)
    assert run is not None
    first, last = _mean(run.step_losses[:10]), _mean(run.step_losses[-10:])
    echo(f"trained: {run.steps} steps, loss {first:.3f} -> {last:.3f}, {run.duration_s:.0f} s in {run.sessions} session(s)")
    load_after_training = _load_average()
    held_out = measure(settings, Path(run.adapter_dir), work / "data" / "held_out.jsonl", work / "eval", echo) if evaluate else None
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = f"{LLM_PACKAGE}=={version(LLM_PACKAGE)}"
    except PackageNotFoundError:
        package = LLM_PACKAGE
    run_record = asdict(run)
    run_record.pop("adapter_dir")
    metadata = {
        "name": ANSWERER_NAME,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "base_model": {"name": LLM_NAME, "package": package, "dtype": "float32"},
        "licence": LICENCE,
        "prompt": "assistant.answering.prompts.build_messages (system instructions, numbered passages, the question)",
        "target": f"[n] (the passage that answers) and its sentence(s) that answer; or {REFUSAL!r} when no passage answers",
        "data": manifest,
        "training": {**run_record, "loss_first_10_steps": round(first, 4), "loss_last_10_steps": round(last, 4),
                     "examples_per_s": run.examples_per_s},
        "machine": {**_machine(), "load_average_start": load_start, "load_average_after_training": load_after_training,
                    "load_average_end": _load_average(), "wall_s": round(time.perf_counter() - wall_start, 1)},
        "held_out_metrics": held_out,
    }
    _ship(Path(run.adapter_dir), metadata, Path(output))
    echo(f"shipped {ANSWERER_NAME} to {output}")
    return metadata


def _ship(adapter_dir: Path, metadata: dict[str, Any], output: Path) -> None:
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy2(adapter_dir / name, tmp / name)
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        if output.exists():
            output.rename(old)
        tmp.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
