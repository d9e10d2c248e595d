"""The production path: a real vLLM server started by `helpmate serve-model` machinery (one per
test run, the `vllm_server` fixture), answered through the HTTP client and LangChain."""

from __future__ import annotations

import socket
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
