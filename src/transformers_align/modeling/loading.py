"""Loading a causal LM and its tokenizer as training and evaluation both do: dtype, attention kernel, pad token;
and, before any weights load, the model's config and its module tree on the meta device (for validation)."""

import json
from pathlib import Path
from typing import Union

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
from transformers.utils import CONFIG_NAME

from transformers_align.errors import UserError

HALF_PRECISION = (torch.float16, torch.bfloat16)  # the dtypes FlashAttention-2 runs in


class ModelLoadingError(UserError):
    """A model folder that is missing or has no readable, valid config, or a loading option the model cannot take;
    the message is one line for the user."""


def looks_local(name_or_path: str) -> bool:
    """Whether the user means a folder on this machine (a hub id is ``name`` or ``org/name``)."""
    return (
        Path(name_or_path).expanduser().exists()
        or name_or_path.startswith((".", "/", "~"))
        or name_or_path.count("/") > 1
    )


def read_config(name_or_path, flag: str = "--model_name_or_path", local_files_only: bool = False):
    """The config of the causal LM ``name_or_path`` names (a local folder, a model in the Hugging Face cache, or a
    hub id where a hub is reachable), read without any weights. A missing folder, a file, a folder without
    ``config.json`` (an adapter folder says so), an unreadable or truncated config, or a model type with no
    causal LM class is a ``ModelLoadingError`` naming ``flag`` (transformers' own errors are tracebacks)."""
    if not name_or_path:
        raise ModelLoadingError(f"{flag} is required: a model folder with a config.json")
    folder = Path(name_or_path).expanduser()
    if looks_local(str(name_or_path)):
        if folder.exists() and not folder.is_dir():
            raise ModelLoadingError(f"{flag} {name_or_path} is a file; give the model's folder (with config.json)")
        if not folder.exists():
            raise ModelLoadingError(f"{flag} {name_or_path}: no such folder; give a model folder with a config.json")
        config_file = folder / CONFIG_NAME
        if not config_file.is_file():
            adapter = (
                " (it holds adapter_config.json: an adapter, not a base model)"
                if (folder / "adapter_config.json").is_file()
                else ""
            )
            raise ModelLoadingError(
                f"{flag} {name_or_path} has no {CONFIG_NAME}: it is not a Hugging Face model folder{adapter}"
            )
        try:
            json.loads(config_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelLoadingError(
                f"{flag} {name_or_path}: {config_file} is not valid JSON ({error}); the file may be truncated"
            ) from None
    try:
        config = AutoConfig.from_pretrained(str(name_or_path), local_files_only=local_files_only)
    except (OSError, ValueError, KeyError) as error:  # hub id unknown or unreachable, unknown model_type
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadingError(
            f"{flag} {name_or_path}: cannot read the model's config ({detail}); models are never downloaded"
        ) from None
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ModelLoadingError(
            f"{flag} {name_or_path}: model type {config.model_type!r} has no causal LM class in transformers"
        )
    return config


def empty_causal_lm(config):
    """The ``*ForCausalLM`` of ``config`` on the meta device: its module tree, with no memory for weights."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config)


def resolve_dtype(dtype: Union[None, str, torch.dtype]) -> Union[None, str, torch.dtype]:
    """``from_pretrained``'s ``torch_dtype``: a torch dtype, ``"auto"`` (the checkpoint's), or None (float32)."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ModelLoadingError(f"--torch_dtype: unknown dtype {dtype!r}; use bfloat16, float16, float32 or auto")
    return resolved


def attention_implementation(requested: str, config, dtype=None) -> str:
    """``auto``: FlashAttention-2 when installed, on a GPU, in half precision and supported by the model class;
    else sdpa where supported, else eager. Any other value is returned as it is."""
    if requested != "auto":
        return requested
    model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    weights_dtype = getattr(config, "torch_dtype", None) if dtype == "auto" else dtype
    try:
        import flash_attn  # noqa: F401

        flash = torch.cuda.is_available() and weights_dtype in HALF_PRECISION and model_class._supports_flash_attn_2
    except ImportError:
        flash = False
    if flash:
        return "flash_attention_2"
    return "sdpa" if model_class._supports_sdpa else "eager"


def with_pad_token(tokenizer):
    """``tokenizer`` itself, given EOS as its pad token where it has none (labels pad with -100, masks hide pads)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # as mid-align does for Llama-3
    return tokenizer


def load_tokenizer(name_or_path: str, local_files_only: bool = False):
    """The tokenizer, with a pad token (:func:`with_pad_token`)."""
    return with_pad_token(AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only))


def load_causal_lm(
    name_or_path: str,
    dtype: Union[None, str, torch.dtype] = None,
    attn_implementation: str = "auto",
    local_files_only: bool = False,
):
    """The ``*ForCausalLM`` in ``dtype`` (see :func:`resolve_dtype`) with attention kernel ``attn_implementation``."""
    dtype = resolve_dtype(dtype)
    config = read_config(name_or_path, local_files_only=local_files_only)
    return AutoModelForCausalLM.from_pretrained(
        name_or_path,
        torch_dtype=dtype,
        local_files_only=local_files_only,
        attn_implementation=attention_implementation(attn_implementation, config, dtype),
    )
