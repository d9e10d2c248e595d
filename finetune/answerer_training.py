"""Resumable LoRA training for the grounded-answer adapter (an hour of CPU that may be interrupted).

The loop is ``finetune.training``'s (answer-only loss on the chat template's assistant tokens,
AdamW, linear warm-up and decay, gradient clipping), with what an hour-long run on a shared
machine needs besides:

* **Checkpoints.** Every ``checkpoint_every`` steps the LoRA weights, the optimiser's and the
  schedule's state and the losses so far are written to ``<work>/checkpoint`` (a new folder renamed
  over the old one, so a crash leaves the previous checkpoint whole). The same command run again
  continues from it; a checkpoint made from other data or settings is refused, not mixed in.
* **A fixed order.** The batches of every epoch are drawn once from the seed, so a resumed run
  takes exactly the batches the uninterrupted run would have; with one torch thread the two end
  with the same weights, bit for bit (tests/finetune/test_answerer_training.py).
* **Batches of similar length.** Examples are grouped by token count before the batches are
  shuffled: padding a 250-token example to 700 would cost as much as the example.
* **Adapted layers.** ``first_layer`` leaves the layers below it without LoRA matrices; the
  backward pass then stops there, which saves a third of the compute at ``first_layer=10`` of 30.

Progress (tqdm: step, loss, examples per second) goes to the terminal and every checkpoint is
logged through ``echo``.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from finetune.dataset import read_jsonl
from finetune.training import (MAX_GRAD_NORM, MAX_LORA_RANK, WARMUP_SHARE, _Example, _answer_loss, _batch, _linear_schedule,
                               encode_example, load_base_for_training)

CHECKPOINT = "checkpoint"
STATE = "state.json"
OPTIMIZER = "optimizer.pt"
Echo = Callable[[str], None]


@dataclass(frozen=True)
class AnswererConfig:
    """The training settings; all of them are recorded in the adapter's metadata."""

    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    first_layer: int = 10
    lr: float = 1e-3
    epochs: int = 1
    batch_size: int = 8
    seed: int = 0
    max_length: int = 768
    checkpoint_every: int = 10


@dataclass
class TrainingRun:
    """What ``train_resumable`` did: steps, losses, speed; the adapter is in ``adapter_dir``."""

    adapter_dir: str
    data_sha256: str
    config: dict[str, Any]
    train_examples: int
    skipped_too_long: int
    steps: int
    step_losses: list[float]
    train_tokens: int
    duration_s: float  # training time summed over every session of the run
    sessions: int  # 1 + the number of times the run was resumed
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def examples_per_s(self) -> float:
        return round(self.train_examples * self.config["epochs"] / self.duration_s, 3) if self.duration_s else 0.0


def _batches(examples: list[_Example], batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """Every batch of every epoch, in training order: per epoch the examples are shuffled, cut into
    pools of 32 batches, sorted by length within a pool, batched, and the batches shuffled."""
    generator = torch.Generator().manual_seed(seed)
    out: list[list[int]] = []
    pool = batch_size * 32
    for _ in range(epochs):
        order = torch.randperm(len(examples), generator=generator).tolist()
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=lambda i: (len(examples[i].input_ids), i))
            batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        out += [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return out


def _lora_model(base_model_dir: Path, config: AnswererConfig, device: str):
    from peft import LoraConfig, get_peft_model

    model = load_base_for_training(base_model_dir, config.seed, device)
    layers = model.config.num_hidden_layers
    if not 0 <= config.first_layer < layers:
        raise ValueError(f"first_layer must be between 0 and {layers - 1}, not {config.first_layer}")
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, target_modules=list(config.targets), lora_dropout=0.0,
                      bias="none", task_type="CAUSAL_LM",
                      layers_to_transform=list(range(config.first_layer, layers)) if config.first_layer else None)
    return get_peft_model(model, lora)


def _save_checkpoint(model, optimizer, scheduler, state: dict[str, Any], work_dir: Path) -> None:
    final = work_dir / CHECKPOINT
    tmp = work_dir / f"{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / OPTIMIZER)
    (tmp / STATE).write_text(json.dumps(state, indent=1) + "\n")
    old = work_dir / f"{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(model, optimizer, scheduler, work_dir: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state after loading its weights into ``model`` and ``optimizer``; None when there is none."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = work_dir / CHECKPOINT
    if not (folder / STATE).exists():
        return None
    state = json.loads((folder / STATE).read_text())
    for key in ("data_sha256", "config"):
        if state[key] != expected[key]:
            raise ValueError(f"the checkpoint in {folder} was made with other {key.replace('_sha256', '')} "
                             f"({state[key]} vs {expected[key]}); use another work folder or --restart")
    set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
    saved = torch.load(folder / OPTIMIZER, weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    return state


def data_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_resumable(train_jsonl: Path, base_model_dir: Path, work_dir: Path, config: AnswererConfig = AnswererConfig(),
                    device: str = "cpu", show_progress: bool = True, echo: Echo = print,
                    stop_after: int | None = None) -> TrainingRun | None:
    """Train (or continue training) the adapter on ``train_jsonl``; the finished adapter is saved in
    ``<work_dir>/adapter``. ``stop_after`` ends this session after that many steps, as an
    interruption would (returns None); the next call continues from the last checkpoint."""
    from transformers import AutoTokenizer

    if not 1 <= config.rank <= MAX_LORA_RANK:
        raise ValueError(f"LoRA rank must be between 1 and {MAX_LORA_RANK} (vLLM's --max-lora-rank); got {config.rank}")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode_example(tokenizer, line["messages"], config.max_length) for line in read_jsonl(train_jsonl)]
    examples = [e for e in encoded if e is not None]
    if not examples:
        raise ValueError(f"{train_jsonl} has no examples within {config.max_length} tokens")
    batches = _batches(examples, config.batch_size, config.epochs, config.seed)
    expected = {"data_sha256": data_sha256(train_jsonl), "config": json.loads(json.dumps(asdict(config)))}

    model = _lora_model(Path(base_model_dir), config, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(len(batches)))
    state = _load_checkpoint(model, optimizer, scheduler, work_dir, expected)
    if state is None:
        state = {**expected, "step": 0, "losses": [], "tokens": 0, "duration_s": 0.0, "sessions": 0}
    else:
        echo(f"resuming from step {state['step']} of {len(batches)} ({work_dir / CHECKPOINT})")
    state["sessions"] += 1
    model.train()
    session_started, done_before = time.perf_counter(), state["duration_s"]
    steps_this_session = 0
    with tqdm(total=len(batches), initial=state["step"], desc="training the answerer", unit="step",
              disable=not show_progress) as progress:
        while state["step"] < len(batches):
            if stop_after is not None and steps_this_session >= stop_after:
                return None
            batch = _batch([examples[i] for i in batches[state["step"]]], pad_id, device)
            loss, _ = _answer_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            steps_this_session += 1
            state["losses"].append(loss.item())
            state["tokens"] += int(batch["attention_mask"].sum())
            state["duration_s"] = round(done_before + time.perf_counter() - session_started, 3)
            recent = state["losses"][-10:]
            progress.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", refresh=False)
            progress.update(1)
            if state["step"] % config.checkpoint_every == 0 or state["step"] == len(batches):
                _save_checkpoint(model, optimizer, scheduler, state, work_dir)
                if not show_progress:
                    echo(f"step {state['step']}/{len(batches)}: loss {sum(recent) / len(recent):.4f}, "
                         f"{state['duration_s']:.0f} s")
    adapter_dir = work_dir / "adapter"
    shutil.rmtree(adapter_dir, ignore_errors=True)
    model.save_pretrained(adapter_dir)
    import peft
    import transformers

    return TrainingRun(
        adapter_dir=str(adapter_dir), data_sha256=expected["data_sha256"],
        config={**expected["config"], "optimizer": "AdamW", "weight_decay": 0.0, "warmup_share": WARMUP_SHARE,
                "schedule": "linear", "max_grad_norm": MAX_GRAD_NORM, "loss": "assistant tokens only",
                "device": device, "dtype": "float32",
                "torch_threads": torch.get_num_threads()},
        train_examples=len(examples), skipped_too_long=len(encoded) - len(examples), steps=len(batches),
        step_losses=[round(x, 5) for x in state["losses"]], train_tokens=state["tokens"], duration_s=state["duration_s"],
        sessions=state["sessions"],
        versions={"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                  "python": platform.python_version()},
    )


def steps_for(examples: int, config: AnswererConfig) -> int:
    return math.ceil(examples / config.batch_size) * config.epochs
