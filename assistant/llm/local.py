"""The embedded backend: the prepared SmolLM2 checkpoint run in-process with transformers.

It needs no server, so a laptop install answers questions out of the box; production points
``HELPMATE_LLM_BACKEND=vllm`` at a served model instead. The weights are loaded once per process
(half a second to a few seconds) and shared by every ``LocalChatModel`` built on the same files.
Float32 by default (bfloat16 is measured for the vLLM server only). ``HELPMATE_LOCAL_PRECISION=int8``
quantises the linear layers' weights to int8 after loading (and after an adapter is merged), which
CPUs with VNNI multiply faster; BENCHMARKS.md ("Generation precision") has its speed and answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from assistant.config import Settings
from assistant.llm.base import GenerationOptions, Message, ModelUnavailableError
from assistant.modelstore import LLM_NAME, ModelMissingError, require_llm


@dataclass
class _LoadedModel:
    tokenizer: Any
    model: Any
    device: str
    # One generation at a time per loaded model: concurrent `generate` calls would fight over
    # the same CPU cores and the tokenizer is not safe across threads. Throughput comes from
    # `generate_batch`, not from threads.
    lock: threading.Lock = field(default_factory=threading.Lock)


_loaded: dict[tuple[str, str, str, str], _LoadedModel] = {}
_loaded_lock = threading.Lock()


def _load(model_path: Path, device: str, adapter_path: Path | None, precision: str = "float32") -> _LoadedModel:
    """The loaded model for these files and precision, loading it on first use (thread-safe)."""
    if precision == "int8" and device != "cpu":
        raise ModelUnavailableError(f"HELPMATE_LOCAL_PRECISION=int8 runs on the CPU only, not on {device}; "
                                    "set HELPMATE_LOCAL_PRECISION=float32")
    key = (str(model_path), device, str(adapter_path or ""), precision)
    with _loaded_lock:
        if key not in _loaded:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from assistant.embeddings import quiet_model_loading

            quiet_model_loading()
            tokenizer = AutoTokenizer.from_pretrained(model_path)
            if tokenizer.pad_token is None:
                # Batches are padded; a checkpoint converted by another transformers release (5.17 on a GPU
                # machine) came without a pad token. Pad positions are masked, so any token serves.
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
            if adapter_path is not None:
                from peft import PeftModel

                # Merging folds the LoRA weights into the base weights: same answers, no adapter
                # overhead per token. The base copy loaded above is this entry's own.
                model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
            model.to(device).eval()
            if precision == "int8":
                model = _quantize_int8(model)
            _loaded[key] = _LoadedModel(tokenizer=tokenizer, model=model, device=device)
        return _loaded[key]


def _quantize_int8(model):
    """``model`` with its transformer layers' linear weights in int8 (dynamic quantisation: activations are
    quantised per call). CPU only. The output layer stays float32: its weight is the input embedding's
    (tied), and it computes the scores that pick each token."""
    import torch

    from assistant.embeddings import quantize_dynamic_int8

    lm_head = model.lm_head
    model.lm_head = torch.nn.Identity()  # left out of the quantisation, put back below
    quantize_dynamic_int8(model, inplace=True)
    model.lm_head = lm_head
    return model


class _StopScanner:
    """Cuts streamed text at the first stop string, holding back text that may begin one.

    Stop strings are not part of the answer (as with OpenAI-compatible servers), and a stop
    string can arrive split over several pieces, so the tail that could start one waits until
    the next piece decides it.
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = [stop for stop in stops if stop]
        self.pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.pending += piece
        cut = _first_stop(self.pending, self.stops)
        if cut is not None:
            self.stopped = True
            text, self.pending = self.pending[:cut], ""
            return text
        hold = max((k for stop in self.stops for k in range(1, len(stop)) if self.pending.endswith(stop[:k])), default=0)
        text = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(text) :]
        return text

    def flush(self) -> str:
        text, self.pending = ("" if self.stopped else self.pending), ""
        return text


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    positions = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    return min(positions) if positions else None


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = _first_stop(text, stops)
    return text if cut is None else text[:cut]


class LocalChatModel:
    """A ``ChatModel`` running in this process; optionally with a LoRA adapter folder merged in."""

    def __init__(self, settings: Settings, adapter_path: Path | None = None):
        self.settings = settings
        self.adapter_path = Path(adapter_path) if adapter_path is not None else None
        if self.adapter_path is not None and not (self.adapter_path / "adapter_config.json").exists():
            raise ModelUnavailableError(
                f"{self.adapter_path} is not a LoRA adapter folder (no adapter_config.json); "
                "give the folder written by the fine-tuning run."
            )
        self.name = self.adapter_path.name if self.adapter_path is not None else LLM_NAME

    def _model(self) -> _LoadedModel:
        try:
            model_path = require_llm(self.settings)
        except ModelMissingError as error:
            raise ModelUnavailableError(str(error)) from error
        return _load(model_path, self.settings.device, self.adapter_path, self.settings.local_precision)

    def _prompt(self, loaded: _LoadedModel, messages: Sequence[Message]) -> str:
        return loaded.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def _generate_kwargs(self, loaded: _LoadedModel, options: GenerationOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": options.max_tokens, "pad_token_id": loaded.tokenizer.pad_token_id}
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature)
        else:
            kwargs.update(do_sample=False)
        if options.stop:
            # Ends generation early; the stop string itself is cut from the text afterwards.
            kwargs.update(stop_strings=list(options.stop), tokenizer=loaded.tokenizer)
        return kwargs

    def generate(self, messages: Sequence[Message], options: GenerationOptions = GenerationOptions()) -> str:
        """The whole completion (greedy when ``options.temperature`` is 0)."""
        return self.generate_batch([messages], options)[0]

    def generate_batch(
        self, conversations: Sequence[Sequence[Message]], options: GenerationOptions = GenerationOptions()
    ) -> list[str]:
        """Completions of several conversations in one left-padded ``generate`` call.

        On CPU one batched call gives several times the tokens per second of one request at a
        time; callers split very long lists into batches of a few dozen.
        """
        if not conversations:
            return []
        import torch

        loaded = self._model()
        with loaded.lock:
            prompts = [self._prompt(loaded, messages) for messages in conversations]
            inputs = loaded.tokenizer(
                prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
            ).to(loaded.device)
            with torch.inference_mode():
                output = loaded.model.generate(**inputs, **self._generate_kwargs(loaded, options))
            texts = loaded.tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [_cut_at_stop(text, options.stop) for text in texts]

    def stream(self, messages: Sequence[Message], options: GenerationOptions = GenerationOptions()) -> Iterator[str]:
        """The completion as text pieces while the model writes it.

        ``generate`` runs in a thread feeding a ``TextIteratorStreamer``; closing this iterator
        early (a client that went away) stops the generation at the next token.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        loaded = self._model()
        cancelled = threading.Event()
        failure: list[BaseException] = []

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool, device=input_ids.device)

        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def run() -> None:
            try:
                with loaded.lock:
                    inputs = loaded.tokenizer(
                        self._prompt(loaded, messages), return_tensors="pt", add_special_tokens=False
                    ).to(loaded.device)
                    with torch.inference_mode():
                        loaded.model.generate(
                            **inputs,
                            **self._generate_kwargs(loaded, options),
                            streamer=streamer,
                            stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                        )
            except BaseException as error:  # noqa: BLE001 - handed to the consuming thread below
                failure.append(error)
                streamer.end()

        worker = threading.Thread(target=run, name="helpmate-local-stream", daemon=True)
        worker.start()
        scanner = _StopScanner(options.stop)
        try:
            for piece in streamer:
                text = scanner.feed(piece)
                if text:
                    yield text
                if scanner.stopped:
                    break
            if failure:
                raise failure[0]
            rest = scanner.flush()
            if rest:
                yield rest
        finally:
            cancelled.set()
