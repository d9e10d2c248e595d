"""The grounded answerer as the default model: chosen by ``HELPMATE_ANSWERER``, merged by the local backend and
served by vLLM from the start under its own name. The adapter is a real one, trained here on four real examples
(``test_answerer_training``'s ``tiny`` file): what is checked is the path, not the adapter's answers."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import torch

from assistant.config import Settings
from assistant.llm import versions
from assistant.llm.base import GenerationOptions
from assistant.llm.versions import ANSWERER_NAME, default_model
from assistant.llm.vllm import VLLMChatModel
from assistant.llm.vllm_server import ServeOptions, served_adapters, server_command
from assistant.modelstore import LLM_NAME
from finetune.answerer_training import AnswererConfig, train_resumable
from tests.conftest import CHECKOUT_SETTINGS, running_vllm
from tests.finetune.conftest import TINY_CONFIG


@pytest.fixture(scope="module")
def answerer(tiny, base_model, tmp_path_factory) -> Path:
    run = train_resumable(tiny, base_model, tmp_path_factory.mktemp("answerer"), TINY_CONFIG, show_progress=False,
                          echo=lambda _: None)
    assert run is not None
    return Path(run.adapter_dir)


@pytest.fixture
def shipped(answerer, monkeypatch) -> Path:
    """The trained adapter where `helpmate finetune train-answerer` ships it."""
    monkeypatch.setattr(versions, "ANSWERER_DIR", answerer)
    return answerer


def test_the_answerer_is_the_default_model_only_when_chosen(shipped, tmp_path):
    chosen = Settings(answerer="adapter", data_dir=tmp_path)
    assert default_model(chosen) == versions.ActiveModel(ANSWERER_NAME, shipped)
    assert served_adapters(chosen) == {ANSWERER_NAME: shipped}
    command = server_command(Path("python"), Path("model"), ServeOptions(port=8123), adapters=served_adapters(chosen))
    assert command[command.index("--lora-modules") + 1] == f"{ANSWERER_NAME}={shipped}"
    bare = Settings(answerer="base", data_dir=tmp_path)
    assert default_model(bare) == versions.ActiveModel(LLM_NAME, None) and served_adapters(bare) == {}


def test_the_local_backend_merges_the_answerer(shipped, tmp_path):
    from assistant.llm.factory import get_chat_model

    model = get_chat_model(Settings(answerer="adapter", data_dir=tmp_path, llm_backend="local"))
    assert model.name == ANSWERER_NAME and model.adapter_path == shipped
    merged = model._model().model
    base = get_chat_model(Settings(answerer="base", data_dir=tmp_path, llm_backend="local"))._model().model
    layer = "model.layers.28.self_attn.q_proj.weight"
    assert all("lora" not in name for name, _ in merged.named_parameters()), "folded in, no adapter layers left"
    assert not torch.equal(merged.state_dict()[layer], base.state_dict()[layer]), "the adapter changed the weights"
    assert torch.equal(merged.state_dict()["model.layers.2.self_attn.q_proj.weight"],
                       base.state_dict()["model.layers.2.self_attn.q_proj.weight"]), "layers below first_layer untouched"


@pytest.mark.slow
def test_vllm_serves_the_answerer_from_the_start_as_the_default_model(shipped):
    settings = CHECKOUT_SETTINGS.model_copy(update={"answerer": "adapter", "vllm_api_key": "EMPTY"})
    with running_vllm(settings, echo=lambda _: None) as server:
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=30) as response:
            served = {m["id"]: m for m in json.load(response)["data"]}
        assert ANSWERER_NAME in served and served[ANSWERER_NAME].get("parent") == LLM_NAME
        model = VLLMChatModel(server.base_url, model=default_model(settings).name)
        try:
            text = model.generate([{"role": "user", "content": "Where is the Eiffel Tower?"}], GenerationOptions(max_tokens=12))
        finally:
            model.close()
        assert text.strip()


def test_an_answer_the_answerer_learned_is_kept_with_its_citation(base_model, tmp_path):
    """The path from adapter to customer: a real adapter, trained here on one real DSTC9 FAQ entry among its
    entity's others, answers that question through the local backend, and the assistant's support check keeps
    the answer with the citation of the entry. (How well the adapter answers questions it never saw is
    BENCHMARKS.md's held-out measurement, not this test's.)"""
    from assistant.answering.grounding import Grounder
    from assistant.answering.prompts import build_messages
    from assistant.embeddings import get_embedder
    from assistant.llm.local import LocalChatModel
    from assistant.retrieval.types import Hit
    from finetune.answerer_data import Example, cited, write_jsonl

    entries = [("Is there a gym at your location?", "There is a gym at the Cambridge Belfry."),
               ("What languages do the staff speak here?", "They speak Greek, English and Polish at The Cambridge Belfry."),
               ("Is there a lift at The Cambridge Belfry?", "The Cambridge Belfry has a lift.")]  # DSTC9 knowledge.json
    hits = [Hit(n, n, f"{q}\n{a}", f"dstc9/hotel/{n}", "The Cambridge Belfry", q, None, 1.0, 1.0)
            for n, (q, a) in enumerate(entries, start=1)]
    question, target = entries[1][0], cited([entries[1][1]], 2)
    example = Example("dstc9/test", "dstc9", "answer", "train", build_messages(question, hits)
                      + [{"role": "assistant", "content": target}], True, 2, [])
    write_jsonl([example] * 4, tmp_path / "train.jsonl")
    config = AnswererConfig(first_layer=20, batch_size=1, epochs=3, lr=3e-3, checkpoint_every=100, max_length=512)
    run = train_resumable(tmp_path / "train.jsonl", base_model, tmp_path / "work", config, show_progress=False,
                          echo=lambda _: None)
    settings = Settings(data_dir=tmp_path, llm_backend="local")
    answer = LocalChatModel(settings, adapter_path=Path(run.adapter_dir)).generate(build_messages(question, hits),
                                                                                  GenerationOptions(max_tokens=40))
    report = Grounder(get_embedder(settings), method="overlap").check(answer, hits, question)
    assert report.supported, (answer, report.reason)
    assert [c.support for c in report.claims] == [2] * len(report.claims) and "[2]" in report.text
