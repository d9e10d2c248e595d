"""The language-model backends: the real packaged model in-process, and the HTTP client's
behaviour when the server is down or silent (real sockets, no mocks). The client against a
real vLLM server is tested in test_vllm_server.py."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from assistant.config import Settings
from assistant.llm.base import GenerationOptions, ModelUnavailableError
from assistant.answering.assistant import Assistant
from assistant.llm.factory import answering_threads, get_chat_model
from assistant.llm.langchain_model import LangChainChatModel, to_message_dicts
from assistant.llm.local import LocalChatModel, _StopScanner
from assistant.llm.vllm import VLLMChatModel
from assistant.modelstore import LLM_NAME
from tests.conftest import REPO

COLORS = [{"role": "user", "content": "Name three colors."}]
SHORT = GenerationOptions(max_tokens=24)


@pytest.fixture(scope="module")
def llm_settings(tmp_path_factory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models_dir=Path(os.environ.get("HELPMATE_MODELS_DIR", REPO / "data" / "models")),
    )


@pytest.fixture(scope="module")
def local_model(llm_settings) -> LocalChatModel:
    model = LocalChatModel(llm_settings)
    model.generate(COLORS, GenerationOptions(max_tokens=1))  # loads it, or fails saying to run `helpmate models prepare`
    return model


@pytest.fixture(scope="module")
def colors_answer(local_model) -> str:
    """The greedy answer to COLORS with SHORT options (several tests compare against it)."""
    return local_model.generate(COLORS, SHORT)


def test_local_generate_and_stream_give_the_same_greedy_text(local_model, colors_answer):
    pieces = list(local_model.stream(COLORS, SHORT))
    assert colors_answer.strip()
    assert len(pieces) > 1, "stream should yield the answer piece by piece"
    assert "".join(pieces) == colors_answer
    assert local_model.name == LLM_NAME


def test_local_stop_strings_end_the_answer_before_them(local_model, colors_answer):
    text = colors_answer
    words = text.split()
    assert len(words) >= 3, f"need a longer answer to pick a stop string from: {text!r}"
    stop = words[2]
    expected = text[: text.find(stop)]
    options = GenerationOptions(max_tokens=24, stop=("never-produced-marker", stop))
    assert local_model.generate(COLORS, options) == expected
    assert "".join(local_model.stream(COLORS, options)) == expected


def test_stop_scanner_holds_back_a_stop_string_split_over_pieces():
    scanner = _StopScanner(["<|end|>"])
    emitted = [scanner.feed(piece) for piece in ["Hel", "lo <", "|en", "d|> more"]]
    assert emitted == ["Hel", "lo ", "", ""]
    assert scanner.stopped and scanner.flush() == ""
    scanner = _StopScanner(["<|end|>"])
    assert scanner.feed("a <") == "a " and scanner.feed("b") == "<b" and scanner.flush() == ""


def test_local_batch_generation_matches_one_at_a_time(local_model):
    conversations = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Why is the sky blue? Explain it to a child."}],
    ]
    options = GenerationOptions(max_tokens=12)
    batch = local_model.generate_batch(conversations, options)
    assert len(batch) == 2 and all(text.strip() for text in batch)
    # Left padding with an attention mask must not change what each conversation gets.
    assert batch == [local_model.generate(messages, options) for messages in conversations]
    assert local_model.generate_batch([], options) == []


def test_local_stream_closed_early_stops_generating(local_model):
    stream = local_model.stream([{"role": "user", "content": "Write a long story about a dragon."}], GenerationOptions(max_tokens=1000))
    assert next(stream)
    stream.close()
    deadline = time.monotonic() + 60
    while any(thread.name == "helpmate-local-stream" for thread in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(thread.name == "helpmate-local-stream" for thread in threading.enumerate())
    assert local_model.generate(COLORS, GenerationOptions(max_tokens=4)).strip()


def test_local_model_with_a_lora_adapter(colors_answer, llm_settings, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from assistant.modelstore import require_llm

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(require_llm(llm_settings), dtype=torch.float32)
    # Random B matrices (not the usual zeros), so the adapter visibly changes the answers.
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter = tmp_path / "support-v1"
    get_peft_model(base, config).save_pretrained(adapter)

    tuned = LocalChatModel(llm_settings, adapter_path=adapter)
    assert tuned.name == "support-v1"
    assert tuned.generate(COLORS, SHORT) != colors_answer

    with pytest.raises(ModelUnavailableError, match="adapter_config.json"):
        LocalChatModel(llm_settings, adapter_path=tmp_path)


def test_local_model_in_int8_quantises_the_layers_and_still_answers(llm_settings, local_model):
    """HELPMATE_LOCAL_PRECISION=int8: the layers' linear weights become int8, the output layer stays float32,
    and the model still writes an answer. Not whether it is right: on the demo questions int8 lost 44% of
    the model's own token-F1 (BENCHMARKS.md "Generation precision"), and here it answered "3" where the
    passage says 30 days, which is why float32 stays the default."""
    import torch

    from assistant.answering.prompts import build_messages
    from assistant.llm.local import _load
    from assistant.modelstore import require_llm
    from assistant.retrieval.types import Hit

    settings = llm_settings.model_copy(update={"local_precision": "int8"})
    quantised = LocalChatModel(settings)
    passage = Hit(1, 1, "Returns: you can return an item within 30 days of delivery for a full refund.",
                  "returns.md", "Returns", None, None, 1.0, 1.0)
    messages = build_messages("How many days do I have to return an item?", [passage])
    assert quantised.generate(messages, GenerationOptions(max_tokens=40)).strip()
    model = _load(require_llm(settings), "cpu", None, "int8").model
    assert isinstance(model.model.layers[0].mlp.down_proj, torch.ao.nn.quantized.dynamic.Linear)
    assert type(model.lm_head) is torch.nn.Linear
    assert local_model.generate(COLORS, SHORT) == local_model.generate(COLORS, SHORT), "float32 model untouched"
    with pytest.raises(ModelUnavailableError, match="CPU only"):
        LocalChatModel(settings.model_copy(update={"device": "cuda"})).generate(COLORS, SHORT)


def test_local_model_not_prepared_says_what_to_run(tmp_path):
    model = LocalChatModel(Settings(data_dir=tmp_path, models_dir=tmp_path / "models"))
    with pytest.raises(ModelUnavailableError, match="helpmate models prepare"):
        model.generate(COLORS)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe closes


def test_vllm_server_down_gives_a_clear_error():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    model = VLLMChatModel(url, retries=1)
    for call in (lambda: model.generate(COLORS), lambda: list(model.stream(COLORS))):
        with pytest.raises(ModelUnavailableError) as caught:
            call()
        message = str(caught.value)
        assert url in message and "not reachable" in message
        assert "helpmate serve-model" in message and "HELPMATE_VLLM_BASE_URL" in message


def test_vllm_server_that_never_answers_times_out_with_a_clear_error():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts connections, never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        with pytest.raises(ModelUnavailableError, match="did not answer within 0.5 s.*HELPMATE_VLLM_TIMEOUT_S"):
            VLLMChatModel(url, timeout_s=0.5, retries=0).generate(COLORS)


def test_vllm_client_retries_server_errors_then_reports_them():
    requests: list[str] = []

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            requests.append(self.path)
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "engine is restarting"}}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        model = VLLMChatModel(f"http://127.0.0.1:{server.server_address[1]}/v1", retries=2)
        with pytest.raises(ModelUnavailableError, match="HTTP 503: engine is restarting"):
            model.generate(COLORS)
    finally:
        server.shutdown()
        server.server_close()
    assert requests == ["/v1/chat/completions"] * 3


def test_factory_picks_the_configured_backend(llm_settings):
    assert isinstance(get_chat_model(llm_settings), LocalChatModel)
    served = get_chat_model(llm_settings.model_copy(update={"llm_backend": "vllm", "vllm_base_url": "http://10.0.0.5:9000/v1/"}))
    assert isinstance(served, VLLMChatModel)
    assert served.name == LLM_NAME and served.base_url == "http://10.0.0.5:9000/v1"
    adapter = get_chat_model(llm_settings.model_copy(update={"llm_backend": "vllm", "vllm_model": "support-v3"}))
    assert adapter.name == "support-v3"


def test_answering_threads_leave_the_cores_to_a_vllm_server_on_this_machine(llm_settings, monkeypatch):
    import assistant.llm.vllm_server

    cores = os.cpu_count() or 1
    monkeypatch.setattr(assistant.llm.vllm_server, "gpu_available", lambda: False)
    beside = llm_settings.model_copy(update={"llm_backend": "vllm", "vllm_base_url": "http://127.0.0.1:8000/v1"})
    assert answering_threads(beside) == 1
    assert answering_threads(beside.model_copy(update={"vllm_base_url": "http://localhost:8000/v1"})) == 1
    assert answering_threads(beside.model_copy(update={"vllm_base_url": "http://10.0.0.5:8000/v1"})) == cores
    assert answering_threads(beside.model_copy(update={"cpu_threads": 3})) == 3
    assert answering_threads(llm_settings) == cores  # the local backend is the model: it gets every core
    monkeypatch.setattr(assistant.llm.vllm_server, "gpu_available", lambda: True)
    assert answering_threads(beside) == cores  # the server runs on the GPU

    import torch

    monkeypatch.setattr(assistant.llm.vllm_server, "gpu_available", lambda: False)
    Assistant(beside)
    assert torch.get_num_threads() == 1


def test_langchain_messages_become_backend_dicts():
    messages = [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello!"), ToolMessage("ticket 42", tool_call_id="call_1")]
    assert to_message_dicts(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "tool", "content": "ticket 42", "tool_call_id": "call_1"},
    ]


def test_langchain_chat_model_on_the_local_backend(local_model, colors_answer):
    chat = LangChainChatModel(chat_model=local_model, max_tokens=SHORT.max_tokens)
    answer = chat.invoke([HumanMessage("Name three colors.")])
    assert isinstance(answer, AIMessage)
    assert answer.content == colors_answer
    assert answer.response_metadata["model_name"] == LLM_NAME
    chunks = list(chat.stream("Name three colors."))
    assert len(chunks) > 1 and "".join(chunk.content for chunk in chunks) == answer.content
    stop = answer.content.split()[2]
    assert chat.bind(stop=[stop]).invoke("Name three colors.").content == answer.content[: answer.content.find(stop)]
