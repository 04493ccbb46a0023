"""Read PEFT adapter directories as plain tensors and write merged ones atomically; no base model is loaded."""

import hashlib
import json
import os
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from transformers_align.data.jsonl import read_json
from transformers_align.errors import UserError

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
LEGACY_WEIGHTS_NAME = "adapter_model.bin"
REPORT_NAME = "merge_report.json"
# PEFT saves every adapter tensor under the wrapped model's prefix; the rest is the base model's module name.
KEY_PREFIX = "base_model.model."
LORA_SUFFIXES = {"A": ".lora_A.weight", "B": ".lora_B.weight"}
IA3_SUFFIX = ".ia3_l"


@dataclass
class Adapter:
    """One adapter directory: its parsed config, its tensors keyed as in the file, and where they came from."""

    path: Path
    config: dict
    tensors: Dict[str, torch.Tensor]
    weights_file: Path

    @property
    def peft_type(self) -> str:
        return str(self.config.get("peft_type", "")).upper()


class AdapterFileError(UserError):
    """An adapter folder, its config or its weights cannot be used; the message is one line for the user."""


def read_adapter_config(path, flag: str = "adapter") -> dict:
    """The parsed ``adapter_config.json`` of the PEFT adapter folder ``path`` (given as ``flag``)."""
    path = Path(path)
    if not path.is_dir():
        raise AdapterFileError(f"{flag} {path}: no such adapter folder")
    config_file = path / CONFIG_NAME
    if not config_file.is_file():
        raise AdapterFileError(f"{flag} {path} has no {CONFIG_NAME}: it is not a PEFT adapter folder")
    config = read_json(config_file)
    if not isinstance(config, dict) or "peft_type" not in config:
        raise AdapterFileError(f"{config_file}: expected a JSON object with a 'peft_type' field")
    return config


def adapter_weights_file(path, flag: str = "adapter") -> Path:
    """``adapter_model.safetensors`` (or the legacy ``.bin``) of the adapter folder ``path``."""
    for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
        if (Path(path) / name).is_file():
            return Path(path) / name
    raise AdapterFileError(f"{flag} {path} has neither {WEIGHTS_NAME} nor {LEGACY_WEIGHTS_NAME}")


def load_adapter(path, flag: str = "adapter") -> Adapter:
    """Read ``adapter_config.json`` and ``adapter_model.safetensors`` (or the legacy ``.bin``) from ``path``."""
    path = Path(path)
    config = read_adapter_config(path, flag)
    weights_file = adapter_weights_file(path, flag)
    try:
        if weights_file.name == WEIGHTS_NAME:
            tensors = load_file(weights_file)
        else:
            tensors = torch.load(weights_file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, SafetensorError, pickle.UnpicklingError, EOFError) as error:
        raise AdapterFileError(f"{flag} {weights_file}: not a readable weights file ({error})") from None
    if not tensors:
        raise AdapterFileError(f"{weights_file} holds no tensors")
    return Adapter(path=path, config=config, tensors=tensors, weights_file=weights_file)


def _split_keys(adapter: Adapter, suffixes: Dict[str, str]) -> Dict[str, Dict[str, torch.Tensor]]:
    """Group tensors by module prefix; any key without one of ``suffixes`` is an error naming it."""
    modules: Dict[str, Dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in adapter.tensors.items():
        part = next((name for name, suffix in suffixes.items() if key.endswith(suffix)), None)
        if part is None:
            unknown.append(key)
            continue
        modules.setdefault(key[: -len(suffixes[part])], {})[part] = tensor
    if unknown:
        shown = ", ".join(sorted(unknown)[:3]) + (f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else "")
        raise AdapterFileError(
            f"{adapter.weights_file}: {len(unknown)} tensor(s) the {adapter.peft_type} merge cannot handle: {shown}. "
            f"Only {', '.join(suffixes.values())} tensors are supported (no biases, embeddings, DoRA or "
            "modules_to_save)"
        )
    for module, parts in modules.items():
        missing = [suffixes[name] for name in suffixes if name not in parts]
        if missing:
            raise AdapterFileError(f"{adapter.weights_file}: module {module} lacks {', '.join(missing)}")
    return modules


def lora_factors(adapter: Adapter) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """``{module: (lora_A, lora_B)}`` with A of shape (r, in) and B of shape (out, r)."""
    modules = _split_keys(adapter, LORA_SUFFIXES)
    factors = {}
    for module, parts in modules.items():
        a, b = parts["A"], parts["B"]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise AdapterFileError(
                f"{adapter.weights_file}: module {module} has lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)}, "
                "expected (r, in) and (out, r)"
            )
        factors[module] = (a, b)
    return factors


def ia3_vectors(adapter: Adapter) -> Dict[str, torch.Tensor]:
    """``{module: ia3_l}``: shape (out, 1) for attention targets, (1, in) for feed-forward ones."""
    return {module: parts["l"] for module, parts in _split_keys(adapter, {"l": IA3_SUFFIX}).items()}


def _matching_pattern(patterns, module_name: str):
    """The first key of ``patterns`` that names ``module_name``, by PEFT's rule, or None."""
    return next((key for key in patterns if re.match(rf"(.*\.)?({key})$", module_name)), None)


def lora_scaling(config: dict, module: str, rank: int) -> float:
    """The factor PEFT multiplies B @ A by for ``module``: alpha / r, or alpha / sqrt(r) with rsLoRA.

    ``rank_pattern`` and ``alpha_pattern`` are resolved as PEFT resolves them, and the resolved rank must be
    the rank of the stored tensors.
    """
    name = module[len(KEY_PREFIX) :] if module.startswith(KEY_PREFIX) else module
    rank_key = _matching_pattern(config.get("rank_pattern") or {}, name)
    alpha_key = _matching_pattern(config.get("alpha_pattern") or {}, name)
    config_rank = config["rank_pattern"][rank_key] if rank_key is not None else config["r"]
    alpha = config["alpha_pattern"][alpha_key] if alpha_key is not None else config["lora_alpha"]
    if config_rank != rank:
        raise AdapterFileError(f"module {module}: the config gives rank {config_rank} but the weights have rank {rank}")
    return alpha / rank**0.5 if config.get("use_rslora") else alpha / rank


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OutputExistsError(UserError):
    """The merge's output folder exists and may not be replaced."""


def check_output_dir(out, overwrite: bool) -> Path:
    """Fail early when ``out`` exists and may not be replaced."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} exists and is a file, not an adapter folder; choose another --out")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"--out {out} already exists; pass --overwrite to replace it, or choose another --out")
    return out


def write_adapter_dir(
    out,
    config: dict,
    tensors: Dict[str, torch.Tensor],
    report: dict,
    overwrite: bool = False,
    extra_files: Optional[Dict[str, bytes]] = None,
):
    """Write ``adapter_config.json``, ``adapter_model.safetensors``, the merge report and ``extra_files``
    (name -> content) into ``out``.

    Everything goes to a temporary sibling directory first, which is renamed to ``out`` at the end, so a
    failure never leaves a partial adapter behind; an existing ``out`` is replaced only with ``overwrite``.
    """
    out = check_output_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        save_file(
            {key: tensor.contiguous() for key, tensor in tensors.items()},
            staging / WEIGHTS_NAME,
            metadata={"format": "pt"},
        )
        (staging / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        for name, content in (extra_files or {}).items():
            (staging / name).write_bytes(content)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, retired / out.name)
            try:
                os.replace(staging, out)
            except OSError:
                os.replace(retired / out.name, out)
                raise
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
