"""The production backend: a vLLM server (or any OpenAI-compatible server) over HTTP.

Plain httpx rather than the ``openai`` package: the chat-completions API is three JSON shapes,
and one pooled ``httpx.Client`` serves concurrent requests from a thread pool, which is how
the server's continuous batching gets fed. Connection failures and 5xx answers are retried with
backoff (a restarting server); everything else becomes a ``ModelUnavailableError`` whose message
says what to start or which setting to change.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator, Sequence

import httpx

from assistant.config import Settings
from assistant.llm.base import GenerationOptions, ModelUnavailableError
from assistant.modelstore import LLM_NAME

_RETRY_BACKOFF_S = 0.5  # doubled after each failed attempt
_HOW_TO_FIX = "start it with `helpmate serve-model`, or set HELPMATE_VLLM_BASE_URL to a running server"


class VLLMChatModel:
    """A ``ChatModel`` served by vLLM; ``name`` is the served model (base model or LoRA adapter)."""

    def __init__(
        self,
        base_url: str,
        model: str = LLM_NAME,
        api_key: str = "EMPTY",
        timeout_s: float = 60.0,
        retries: int = 2,
        max_connections: int = 64,
    ):
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.retries = retries
        self.timeout_s = timeout_s
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> VLLMChatModel:
        """The server and model named by ``HELPMATE_VLLM_*``; an empty model name means the base model
        that ``helpmate serve-model`` serves."""
        return cls(
            base_url=settings.vllm_base_url,
            model=settings.vllm_model or LLM_NAME,
            api_key=settings.vllm_api_key,
            timeout_s=settings.vllm_timeout_s,
            retries=settings.vllm_retries,
        )

    def close(self) -> None:
        self._client.close()

    def _payload(
        self, messages: Sequence[dict[str, Any]], options: GenerationOptions, **extra: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.name,
            "messages": list(messages),
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            **extra,
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        return payload

    def _unreachable(self, error: Exception) -> ModelUnavailableError:
        if isinstance(error, httpx.TimeoutException) and not isinstance(error, httpx.ConnectTimeout):
            return ModelUnavailableError(
                f"The model server at {self.base_url} did not answer within {self.timeout_s:g} s; it may be "
                "overloaded. Try again, or raise HELPMATE_VLLM_TIMEOUT_S."
            )
        return ModelUnavailableError(
            f"The model server at {self.base_url} is not reachable ({type(error).__name__}: {error}); {_HOW_TO_FIX}."
        )

    def _rejected(self, response: httpx.Response) -> ModelUnavailableError:
        try:
            body = json.loads(response.read())
            detail = body.get("error", body) if isinstance(body, dict) else body
            detail = detail.get("message", detail) if isinstance(detail, dict) else detail
        except ValueError:
            detail = response.text[:500]
        hint = ""
        if response.status_code == 404:
            hint = f" Is {self.name!r} served there? Set HELPMATE_VLLM_MODEL to a name listed at {self.base_url}/models."
        elif response.status_code == 401:
            hint = " Set HELPMATE_VLLM_API_KEY to the server's API key."
        return ModelUnavailableError(
            f"The model server at {self.base_url} answered HTTP {response.status_code}: {str(detail).rstrip('.')}.{hint}"
        )

    def _send(self, payload: dict[str, Any], stream: bool) -> httpx.Response:
        """POST /chat/completions, retrying connection failures and 5xx; the response is open."""
        attempt = 0
        while True:
            retryable: Exception | httpx.Response
            try:
                request = self._client.build_request("POST", "/chat/completions", json=payload)
                response = self._client.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as error:
                retryable = error
            except httpx.HTTPError as error:
                raise self._unreachable(error) from error
            else:
                if response.status_code < 500:
                    if response.status_code >= 400:
                        try:
                            raise self._rejected(response)
                        finally:
                            response.close()
                    return response
                retryable = response
                response.read()  # kept for the error message if this was the last attempt
                response.close()
            if attempt >= self.retries:
                if isinstance(retryable, httpx.Response):
                    raise self._rejected(retryable)
                raise self._unreachable(retryable) from retryable
            time.sleep(_RETRY_BACKOFF_S * 2**attempt)
            attempt += 1

    def chat(
        self,
        messages: Sequence[dict[str, Any]],
        options: GenerationOptions = GenerationOptions(),
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: str = "auto",
    ) -> dict[str, Any]:
        """The assistant message as the server returns it: ``content`` and, given ``tools``
        (OpenAI function schemas), possibly ``tool_calls``. ``tool_choice="required"`` makes the
        server constrain the output to a valid call (structured output)."""
        extra: dict[str, Any] = {"tools": list(tools), "tool_choice": tool_choice} if tools else {}
        response = self._send(self._payload(messages, options, **extra), stream=False)
        try:
            return response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError) as error:
            raise ModelUnavailableError(
                f"The server at {self.base_url} is not an OpenAI-compatible chat server "
                f"(unexpected answer: {response.text[:200]!r}); check HELPMATE_VLLM_BASE_URL (it ends in /v1)."
            ) from error

    def generate(self, messages: Sequence[dict[str, Any]], options: GenerationOptions = GenerationOptions()) -> str:
        """The whole completion."""
        return self.chat(messages, options).get("content") or ""

    def stream(self, messages: Sequence[dict[str, Any]], options: GenerationOptions = GenerationOptions()) -> Iterator[str]:
        """The completion as the server streams it (server-sent events, one ``data:`` line per chunk).

        Retries happen only before the first piece: a stream that breaks halfway raises, since
        replaying it would repeat text the reader has already seen.
        """
        response = self._send(self._payload(messages, options, stream=True), stream=True)
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    error = chunk["error"]
                    raise ModelUnavailableError(
                        f"The model server at {self.base_url} failed mid-answer: {error.get('message', error) if isinstance(error, dict) else error}"
                    )
                for choice in chunk.get("choices", []):
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        finally:
            response.close()
