"""The grounded-answer adapter's data and training, on the real data sets and the real packaged model.

The split rules keep every held-out SQuAD article and DSTC9 entity out of training, the targets are
cited passage sentences or "I don't know.", and training on a tiny sample (four short examples, two
steps, LoRA on the top three layers: seconds) is reproducible and resumes from its checkpoint to
the same weights, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from assistant.answering.prompts import SYSTEM_PROMPT
from finetune.answerer_data import REFUSAL, dstc9_part, load_dstc9, squad_part
from finetune.answerer_training import train_resumable
from tests.conftest import SHARED
from tests.finetune.conftest import DSTC9, SQUAD, TINY_CONFIG as CONFIG

pytestmark = pytest.mark.needs(SQUAD.exists() and (DSTC9 / "labels.json").exists(),
                               reason=f"SQuAD 2.0 dev and DSTC9 are not in {SHARED / 'datasets'}")
HELD_OUT_ARTICLES = {"Amazon_rainforest", "Huguenot", "Imperialism", "Packet_switching", "Rhine", "Southern_California", "Warsaw"}


def _squad_articles() -> dict[str, str]:
    data = json.loads(SQUAD.read_text())["data"]
    return {f"squad2/{qa['id']}": article["title"] for article in data for p in article["paragraphs"] for qa in p["qas"]}


def test_split_rules_keep_held_out_articles_and_entities_out_of_training(parts):
    train, held_out = parts
    article_of = _squad_articles()
    assert {title for title in set(article_of.values()) if squad_part(title) == "held_out"} == HELD_OUT_ARTICLES
    replies, _ = load_dstc9(DSTC9)
    entity_of = {label_id: snippet for label_id, _, snippet in replies}

    def side(example) -> str:
        if example.source == "squad2":
            return squad_part(article_of[example.id])
        s = entity_of[example.id]
        return dstc9_part(s.domain, s.entity_id, s.doc_id)

    assert all(side(e) == "train" for e in train) and all(side(e) == "held_out" for e in held_out)
    # No passage of a held-out article or entity is a distractor in a training prompt either.
    held_titles = {t.replace("_", " ") for t in HELD_OUT_ARTICLES} | {entity_of[e.id].name for e in held_out if e.source == "dstc9"}
    train_titles = {line[line.index("]") + 2:].split(" > ")[0] for e in train for line in e.messages[1]["content"].splitlines()
                    if line.startswith("[") and "]" in line}
    assert not (held_titles - {"Taxi", "Train"}) & train_titles
    assert {(e.source, e.kind) for e in train} == {("squad2", "answer"), ("squad2", "impossible"), ("squad2", "removed"),
                                                    ("dstc9", "answer"), ("dstc9", "removed")}


def test_prompts_are_helpmates_and_targets_cite_the_answering_passage_or_refuse(parts):
    train, _ = parts
    for example in train[::50]:
        system, user, target = example.messages
        assert system == {"role": "system", "content": SYSTEM_PROMPT} and user["content"].startswith("Passages (quoted")
        if example.answerable:
            assert f"[{example.cite}]" in target["content"] and f"[{example.cite}]" in user["content"]
            if example.source == "dstc9":
                assert "?" not in target["content"], "questions back are left out of targets"
        else:
            assert target["content"] == REFUSAL
    squad_answers = [e for e in train if e.source == "squad2" and e.answerable]
    assert all(any(r.casefold() in e.messages[2]["content"].casefold() for r in e.references) for e in squad_answers[:200]), \
        "a SQuAD target is the passage sentence that holds the answer"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / "adapter_model.safetensors"))


def test_training_is_reproducible_and_resumes_bit_for_bit(tiny, base_model, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one order of floating-point sums
    try:
        whole = train_resumable(tiny, base_model, tmp_path / "whole", CONFIG, show_progress=False, echo=lambda _: None)
        assert train_resumable(tiny, base_model, tmp_path / "split", CONFIG, show_progress=False, echo=lambda _: None,
                               stop_after=1) is None, "an interrupted session returns nothing"
        assert json.loads((tmp_path / "split" / "checkpoint" / "state.json").read_text())["step"] == 1
        notes: list[str] = []
        resumed = train_resumable(tiny, base_model, tmp_path / "split", CONFIG, show_progress=False, echo=notes.append)
    finally:
        torch.set_num_threads(threads)
    assert whole is not None and resumed is not None
    assert any("resuming from step 1 of 2" in note for note in notes)
    assert (whole.steps, resumed.steps, resumed.sessions) == (2, 2, 2)
    assert resumed.step_losses == whole.step_losses and all(loss > 0 for loss in whole.step_losses)
    a, b = _weights(whole.adapter_dir), _weights(resumed.adapter_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(".layers.2" in k for k in a), "LoRA matrices only from first_layer up (27-29)"
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in a.items() if "lora_B" in k), "training moved the weights"


def test_a_checkpoint_from_other_data_is_refused(tiny, base_model, tmp_path):
    work = tmp_path / "work"
    assert train_resumable(tiny, base_model, work, CONFIG, show_progress=False, echo=lambda _: None, stop_after=1) is None
    other = tmp_path / "other.jsonl"
    other.write_text("".join(tiny.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(ValueError, match="other data"):
        train_resumable(other, base_model, work, CONFIG, show_progress=False, echo=lambda _: None)
