"""Fixtures of the grounded-answer adapter's tests: the real data sets' examples, a tiny real training file,
the packaged base model."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.modelstore import require_llm
from finetune.answerer_data import build_examples, write_jsonl
from finetune.answerer_training import AnswererConfig
from tests.conftest import SHARED
from tests.finetune.test_training import MODELS_DIR

SQUAD = SHARED / "datasets" / "squad2" / "dev-v2.0.json"
DSTC9 = SHARED / "datasets" / "dstc9_grounded_test"
# Two steps of two examples, LoRA on the top three layers: seconds on a CPU.
TINY_CONFIG = AnswererConfig(first_layer=27, batch_size=2, checkpoint_every=1, max_length=512)


@pytest.fixture(scope="module")
def parts():
    return build_examples(SQUAD, DSTC9, "train", 0), build_examples(SQUAD, DSTC9, "held_out", 0)


@pytest.fixture(scope="module")
def tiny(parts, tmp_path_factory) -> Path:
    """Four short real examples (two answers, two refusals), as the training file."""
    train, _ = parts
    short = sorted(train, key=lambda e: (len(e.messages[1]["content"]), e.id))
    chosen = [e for e in short if e.answerable][:2] + [e for e in short if not e.answerable][:2]
    path = tmp_path_factory.mktemp("tiny") / "train.jsonl"
    write_jsonl(chosen, path)
    return path


@pytest.fixture(scope="module")
def base_model() -> Path:
    return require_llm(Settings(data_dir=Path("/tmp"), models_dir=MODELS_DIR))
