"""LoRA fine-tuning of the base language model on a snapshot's supervised examples.

Plain PyTorch and ``peft``: one causal-LM loss over the assistant's tokens only (the prompt's
tokens are masked with -100, so the adapter learns to answer, not to repeat help-center passages),
AdamW with linear warm-up and decay, gradient clipping, a fixed seed for the LoRA initialisation
and the shuffling. TRL's ``SFTTrainer`` would do the same through the ``Trainer`` machinery and
``datasets``, two more dependencies for one loop of thirty lines.

The adapter is saved with ``save_pretrained`` (``adapter_config.json`` and
``adapter_model.safetensors``): ``peft.PeftModel.from_pretrained`` loads it in-process and vLLM
serves it (``--enable-lora --max-lora-rank 16``, or at run time through ``/v1/load_lora_adapter``).
For vLLM the rank stays at most :data:`MAX_LORA_RANK` and the targets are the standard projection
names. ``training.json`` beside it records the data's hashes, the hyperparameters, the losses and
the speed, so every adapter says what it was trained on and how.

Runs in float32 on every device: on a GPU (H200) the packaged SmolLM2's LoRA training in bfloat16
reached a NaN loss within a few hundred steps where float32 did not (``finetune.answerer_training``). On the CPU the same data, hyperparameters and seed give the
same losses, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from assistant.embeddings import quiet_model_loading
from assistant.llm.base import Message
from finetune.dataset import read_jsonl

MAX_LORA_RANK = 16  # `helpmate serve-model` starts vLLM with --max-lora-rank 16
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
IGNORE_INDEX = -100  # label value the loss skips
WARMUP_SHARE = 0.05
MAX_GRAD_NORM = 1.0
TRAINING_RECORD = "training.json"


@dataclass
class TrainingResult:
    """What a training run produced and measured; also written to ``training.json``."""

    output_dir: str
    base_model: str
    data: dict[str, Any]
    hyperparameters: dict[str, Any]
    train_examples: int
    eval_examples: int
    skipped_too_long: int
    steps: int
    step_losses: list[float]
    train_loss: float
    eval_loss_before: float | None
    eval_loss: float | None
    train_tokens: int
    duration_s: float
    examples_per_s: float
    tokens_per_s: float
    versions: dict[str, str]


@dataclass
class _Example:
    input_ids: list[int]
    labels: list[int]


def encode_example(tokenizer, messages: Sequence[Message], max_length: int) -> _Example | None:
    """Token ids of one conversation and its labels, which are the final assistant answer's tokens
    (with the end-of-turn token, so the model learns to stop); None when it exceeds ``max_length``.

    The prompt is rendered exactly as at inference (chat template with the generation prompt) and
    tokenised on its own, so training sees the same prompt tokens the served model sees.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("a supervised example must end with the assistant's answer")
    prompt = tokenizer.apply_chat_template(list(messages[:-1]), add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(list(messages), tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the model's chat template renders the prompt differently when an answer follows; "
                         "answer-only loss masking needs a template that does not")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    if len(prompt_ids) + len(answer_ids) > max_length:
        return None
    return _Example(prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids)


def _batch(examples: Sequence[_Example], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Left-padded tensors: every row ends with its answer, so :func:`_answer_loss` needs the
    logits of the last positions only."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, width - n:] = torch.tensor(example.input_ids)
        labels[row, width - n:] = torch.tensor(example.labels)
        mask[row, width - n:] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # each row's real tokens count from 0, as when served
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions.to(device),
            "labels": labels.to(device)}


def _answer_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the answer tokens of a batch, and how many there are.

    Only the logits that predict answer tokens are computed (``logits_to_keep``): the prompt,
    passages included, is most of every example, and its logits over the 49k-word vocabulary
    cost time and gigabytes of memory that the loss never uses.
    """
    labels = batch["labels"]
    answer = int((labels != IGNORE_INDEX).sum(-1).max())
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=answer + 1).logits
    # The logit at position t predicts token t + 1: the last kept logit predicts past the end.
    targets = labels[:, -answer:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                             ignore_index=IGNORE_INDEX)
    return loss, int((targets != IGNORE_INDEX).sum())


@torch.no_grad()
def _eval_loss(model, examples: Sequence[_Example], batch_size: int, pad_id: int, device: str) -> float | None:
    """Mean loss per answer token over ``examples`` (not per batch, so batch size does not weigh in)."""
    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        loss, n = _answer_loss(model, _batch(examples[start:start + batch_size], pad_id, device))
        total += loss.item() * n
        tokens += n
    model.train()
    return total / tokens


def _linear_schedule(total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up over the first WARMUP_SHARE of the steps, then
    linear decay. Unlike the usual schedule, the first and last steps get a non-zero rate: a run of
    a few steps on a small feedback snapshot cannot afford to waste one."""
    warmup = math.ceil(WARMUP_SHARE * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / (total_steps - warmup))

    return factor


def load_base_for_training(base_model_dir: Path, seed: int, device: str):
    """The base model to put LoRA matrices on: loaded quietly, in float32 on every device (in bfloat16
    on a GPU, H200 2026-11-30, the answerer's loss turned to NaN between steps 60 and 180; a 135M model
    in float32 still trains in about 20 s there), without the generation cache (training never reads
    it), after seeding torch's global generator, from which peft initialises the LoRA A matrices."""
    from transformers import AutoModelForCausalLM

    quiet_model_loading()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32).to(device)
    model.config.use_cache = False
    return model


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_lora(
    train_jsonl: Path,
    eval_jsonl: Path | None,
    base_model_dir: Path,
    output_dir: Path,
    rank: int = 8,
    alpha: int = 16,
    targets: Sequence[str] = DEFAULT_TARGETS,
    lr: float = 2e-4,
    epochs: int = 3,
    batch_size: int = 8,
    seed: int = 0,
    device: str = "cpu",
    max_length: int = 2048,
    show_progress: bool = True,
    init_adapter: Path | None = None,
) -> TrainingResult:
    """Train a LoRA adapter on the ``{"messages": [...]}`` examples of ``train_jsonl`` and save it in
    the new folder ``output_dir``; ``eval_jsonl`` (may be empty or None) gives the eval loss before
    and after training. Examples longer than ``max_length`` tokens are skipped and counted.

    ``init_adapter`` (the grounded answerer, ``assistant.llm.versions.answerer_adapter``)
    is the adapter training continues from; its rank, alpha and target modules then replace
    ``rank``, ``alpha`` and ``targets``. Feedback teaches a team's facts and voice; starting from the
    answerer keeps the answer format it already learned (cite the passage, or say "I don't know").

    The adapter is written to a temporary sibling folder and renamed into place when complete, so a
    crash never leaves a folder that looks like a finished adapter.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    output_dir, base_model_dir = Path(output_dir), Path(base_model_dir)
    if not 1 <= rank <= MAX_LORA_RANK:
        raise ValueError(f"LoRA rank must be between 1 and {MAX_LORA_RANK} (vLLM serves adapters up to --max-lora-rank {MAX_LORA_RANK}); got {rank}")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"epochs and batch size must be at least 1 and the learning rate positive; got {epochs}, {batch_size}, {lr}")
    if output_dir.exists():
        raise FileExistsError(f"{output_dir} already exists; adapters are never overwritten, choose a new output folder")
    if not (base_model_dir / "config.json").exists():
        raise FileNotFoundError(f"no model in {base_model_dir} (no config.json); run `helpmate models prepare`")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for, but torch sees no CUDA GPU; train with --device cpu")

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def load(path: Path | None) -> tuple[list[_Example], int]:
        encoded = [encode_example(tokenizer, line["messages"], max_length) for line in (read_jsonl(path) if path else [])]
        return [e for e in encoded if e is not None], sum(e is None for e in encoded)

    train, skipped_train = load(train_jsonl)
    evaluation, skipped_eval = load(eval_jsonl)
    if not train:
        raise ValueError(f"{train_jsonl} has no training examples within {max_length} tokens; export more feedback first")

    model = load_base_for_training(base_model_dir, seed, device)
    if init_adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, Path(init_adapter), is_trainable=True)
        started_from = model.peft_config["default"]
        rank, alpha, targets = started_from.r, started_from.lora_alpha, tuple(sorted(started_from.target_modules))
    else:
        config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, bias="none",
                            task_type="CAUSAL_LM")
        model = get_peft_model(model, config)

    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps = steps_per_epoch * epochs
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(total_steps))
    shuffle = torch.Generator().manual_seed(seed)

    eval_before = _eval_loss(model, evaluation, batch_size, pad_id, device)
    step_losses: list[float] = []
    tokens = 0
    model.train()
    started = time.perf_counter()
    with tqdm(total=total_steps, desc="fine-tuning", unit="step", disable=not show_progress) as progress:
        for epoch in range(epochs):
            order = torch.randperm(len(train), generator=shuffle).tolist()
            for start in range(0, len(order), batch_size):
                batch = _batch([train[i] for i in order[start:start + batch_size]], pad_id, device)
                loss, _ = _answer_loss(model, batch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step_losses.append(loss.item())
                tokens += int(batch["attention_mask"].sum())
                progress.set_postfix(epoch=epoch + 1, loss=f"{step_losses[-1]:.4f}", refresh=False)
                progress.update(1)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    duration = time.perf_counter() - started
    eval_after = _eval_loss(model, evaluation, batch_size, pad_id, device)

    import peft
    import transformers

    train_sha = _file_sha256(train_jsonl)
    eval_sha = _file_sha256(eval_jsonl) if eval_jsonl else None
    result = TrainingResult(
        output_dir=str(output_dir),
        base_model=str(base_model_dir),
        data={
            "train": {"path": str(train_jsonl), "sha256": train_sha},
            "eval": {"path": str(eval_jsonl) if eval_jsonl else None, "sha256": eval_sha},
            "hash": hashlib.sha256(f"train\n{train_sha}\neval\n{eval_sha}\n".encode()).hexdigest(),
        },
        hyperparameters={
            "rank": rank, "alpha": alpha, "targets": list(targets), "lora_dropout": 0.0, "lr": lr, "epochs": epochs,
            "batch_size": batch_size, "seed": seed, "device": device, "dtype": "float32",
            "max_length": max_length, "optimizer": "AdamW", "weight_decay": 0.0, "warmup_share": WARMUP_SHARE,
            "schedule": "linear", "max_grad_norm": MAX_GRAD_NORM, "loss": "assistant tokens only",
            "init_adapter": str(init_adapter) if init_adapter is not None else None,
        },
        train_examples=len(train), eval_examples=len(evaluation), skipped_too_long=skipped_train + skipped_eval,
        steps=total_steps, step_losses=step_losses,
        train_loss=sum(step_losses[-steps_per_epoch:]) / min(steps_per_epoch, len(step_losses)),
        eval_loss_before=eval_before, eval_loss=eval_after,
        train_tokens=tokens, duration_s=round(duration, 3),
        examples_per_s=round(len(train) * epochs / duration, 3), tokens_per_s=round(tokens / duration, 1),
        versions={"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                  "python": platform.python_version()},
    )

    tmp = output_dir.with_name(f".{output_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        (tmp / TRAINING_RECORD).write_text(json.dumps(asdict(result), indent=2) + "\n")
        tmp.rename(output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
