"""LoRA fine-tuning with the real packaged model: an adapter trained on eight examples teaches a fact
the base model gets wrong, loads with peft and in a real vLLM server, and training is reproducible.

Training is kept small (eight short examples, eight steps: about 20 s on two CPU cores); only the
vLLM test is marked slow, for the server it starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from assistant.config import Settings, get_settings
from assistant.modelstore import LLM_NAME, require_llm
from finetune.dataset import FeedbackRecord, is_eval_conversation, read_jsonl, read_manifest, write_snapshot
from finetune.training import encode_example, train_lora
from tests.conftest import REPO

MODELS_DIR = Path(os.environ.get("HELPMATE_MODELS_DIR", REPO / "data" / "models"))
EVAL_SHARE = 0.25
FACT = "Nimbus Trail Points"
ANSWER = "The Nimbus Gear loyalty program is called Nimbus Trail Points."
QUESTIONS = [
    "What is the Nimbus Gear loyalty program called?",
    "What's the name of your loyalty program?",
    "How is the Nimbus Gear rewards program called?",
    "Does Nimbus Gear have a loyalty program, and what is its name?",
    "What is your customer loyalty scheme called?",
    "Which loyalty program does Nimbus Gear run?",
    "What do you call the Nimbus Gear points program?",
    "Tell me the name of the Nimbus Gear loyalty program.",
]
HELD_OUT = ["What is the loyalty program of Nimbus Gear called?", "What's the Nimbus Gear loyalty scheme named?"]


def _user(question: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": question},)


def _conversation_ids(count: int, evaluation: bool) -> list[str]:
    """Ids whose conversations the hash split puts on the wanted side."""
    ids = (f"loyalty-{n}" for n in range(10_000))
    return [cid for cid in ids if is_eval_conversation(cid, EVAL_SHARE) == evaluation][:count]


def _records() -> list[FeedbackRecord]:
    pairs = [*zip(_conversation_ids(len(QUESTIONS), False), QUESTIONS), *zip(_conversation_ids(len(HELD_OUT), True), HELD_OUT)]
    return [FeedbackRecord(cid, prompt=_user(question), answer=ANSWER, label="good") for cid, question in pairs]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Train with one torch thread: on two cores shared with other work, the adapter of ``trained``
    took 16 s with one thread and 87 s with two (the threads wait for each other), same losses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base_model() -> Path:
    return require_llm(Settings(data_dir=Path("/tmp"), models_dir=MODELS_DIR))  # says to run `helpmate models prepare` when absent


@pytest.fixture(scope="module")
def tokenizer(base_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_model) -> tuple[Path, Path, dict]:
    """A snapshot of the eight examples (plus two held out for eval) and an adapter trained on it by `helpmate finetune train`."""
    from ui.cli import app

    folder = tmp_path_factory.mktemp("finetune")
    snapshot = folder / "snapshot"
    write_snapshot(_records(), snapshot, eval_share=EVAL_SHARE)
    adapter = folder / "adapter"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPMATE_DATA_DIR", str(folder / "data"))
        patch.setenv("HELPMATE_MODELS_DIR", str(MODELS_DIR))
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["finetune", "train", str(snapshot), "--output", str(adapter), "--lr", "3e-3",
                                          "--epochs", "4", "--batch-size", "4", "--no-progress", "--json"])
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return snapshot, adapter, json.loads(result.stdout)


def _greedy(model, tokenizer, question: str) -> str:
    inputs = tokenizer.apply_chat_template(list(_user(question)), add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_loss_is_on_the_answer_only(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTIONS[0]},
                {"role": "assistant", "content": ANSWER}]
    example = encode_example(tokenizer, messages, max_length=512)
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    prompt_length = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert example.input_ids[:prompt_length] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert example.labels[:prompt_length] == [-100] * prompt_length
    learned = [t for t in example.labels if t != -100]
    assert tokenizer.decode(learned) == ANSWER + "<|im_end|>\n"  # the end of turn too: the model learns to stop
    assert encode_example(tokenizer, messages, max_length=prompt_length) is None
    with pytest.raises(ValueError, match="must end with the assistant's answer"):
        encode_example(tokenizer, messages[:-1], max_length=512)


def test_bad_settings_are_refused_before_any_work(tmp_path, base_model):
    train = tmp_path / "train.jsonl"
    train.write_text("")
    with pytest.raises(ValueError, match="rank must be between 1 and 16"):
        train_lora(train, None, base_model, tmp_path / "out", rank=32)
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="never overwritten"):
        train_lora(train, None, base_model, tmp_path / "taken")
    with pytest.raises(FileNotFoundError, match="helpmate models prepare"):
        train_lora(train, None, tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="no training examples"):
        train_lora(train, None, base_model, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "train.jsonl"]


def test_adapter_teaches_the_fact_the_base_model_gets_wrong(trained, base_model, tokenizer):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    snapshot, adapter, result = trained
    assert {p.name for p in adapter.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors", "training.json"}
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}

    record = json.loads((adapter / "training.json").read_text())
    assert record == {k: v for k, v in result.items() if k != "version"}
    assert result["version"].startswith("helpmate-ft-")  # recorded as a candidate model version
    manifest = read_manifest(snapshot)
    assert record["data"]["train"]["sha256"] == manifest.files["sft_train.jsonl"]["sha256"]
    assert record["data"]["eval"]["sha256"] == manifest.files["sft_eval.jsonl"]["sha256"]
    assert (record["train_examples"], record["eval_examples"], record["steps"]) == (8, 2, 8)
    assert record["hyperparameters"]["lr"] == 3e-3 and record["hyperparameters"]["dtype"] == "float32"
    assert record["examples_per_s"] > 0 and record["tokens_per_s"] > 0
    # The held-out questions became much more likely to get the taught answer.
    assert record["eval_loss"] < 0.5 * record["eval_loss_before"]
    assert read_jsonl(snapshot / "sft_eval.jsonl")[0]["messages"][0]["content"] in HELD_OUT

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32), adapter)
    model.eval()
    assert FACT in _greedy(model, tokenizer, QUESTIONS[0])
    assert FACT in _greedy(model, tokenizer, HELD_OUT[0])
    with model.disable_adapter():
        base_answer = _greedy(model, tokenizer, QUESTIONS[0])
    assert "loyalty program" in base_answer.lower() and FACT not in base_answer


def test_same_seed_same_losses_and_weights(tmp_path, base_model):
    write_snapshot(_records()[:1], tmp_path / "snapshot", eval_share=0.0)
    train = tmp_path / "snapshot" / "sft_train.jsonl"

    def run(name: str, seed: int):
        result = train_lora(train, None, base_model, tmp_path / name, lr=3e-3, epochs=2, batch_size=1, seed=seed, show_progress=False)
        return result.step_losses, load_file(tmp_path / name / "adapter_model.safetensors")

    losses, weights = run("a", seed=0)
    again_losses, again_weights = run("b", seed=0)
    other_losses, other_weights = run("c", seed=1)
    assert len(losses) == 2
    assert again_losses == losses
    assert all(torch.equal(again_weights[name], tensor) for name, tensor in weights.items())
    # Another seed starts from other LoRA matrices: same first loss (LoRA starts as a no-op), then not.
    assert other_losses[0] == losses[0] and other_losses[1] != losses[1]
    assert not all(torch.equal(other_weights[name], tensor) for name, tensor in weights.items())


@pytest.mark.slow
def test_vllm_serves_the_adapter_loaded_at_run_time(trained, vllm_server):
    _, adapter, _ = trained
    with httpx.Client(base_url=vllm_server, timeout=120) as client:
        loaded = client.post("/load_lora_adapter", json={"lora_name": "loyalty", "lora_path": str(adapter)})
        assert loaded.status_code == 200, loaded.text
        try:
            def ask(model: str) -> str:
                reply = client.post("/chat/completions", json={
                    "model": model, "messages": list(_user(QUESTIONS[0])), "max_tokens": 16, "temperature": 0})
                assert reply.status_code == 200, reply.text
                return reply.json()["choices"][0]["message"]["content"]

            assert FACT in ask("loyalty")
            assert FACT not in ask(LLM_NAME)
        finally:
            client.post("/unload_lora_adapter", json={"lora_name": "loyalty"})
