"""AdaMergeX: add the language gap of two reference-task adapters to a task adapter and save a PEFT adapter."""

import math
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Dict, Optional

from transformers_align.errors import UserError
from transformers_align.merging import rules
from transformers_align.merging.adapter_files import (
    LORA_SUFFIXES,
    Adapter,
    adapter_weights_file,
    check_output_dir,
    file_sha256,
    ia3_vectors,
    load_adapter,
    lora_factors,
    lora_scaling,
    read_adapter_config,
    write_adapter_dir,
)
from transformers_align.merging.compatibility import AdapterMismatchError, check_compatible, check_same_modules
from transformers_align.modeling.gguf_checkpoint import BASE_MODEL_RECORD
from transformers_align.paths import refuse_output_over_inputs

ROLES = ("task", "ref_target", "ref_source")
FLAGS = {role: f"--{role}" for role in ROLES}
LORA_METHODS = ("delta", "delta-svd", "per-factor")
IA3_METHODS = ("ratio",)
FORMULAS = {
    "delta": "ΔW = ΔW_task + t·(ΔW_ref_target − ΔW_ref_source), ΔW = scaling·lora_B@lora_A (exact)",
    "delta-svd": "ΔW = ΔW_task + t·(ΔW_ref_target − ΔW_ref_source), truncated to rank r by SVD",
    "per-factor": "X = X_task + t·(X_ref_target − X_ref_source) for X in (lora_A, lora_B); not the ΔW rule",
    "ratio": "l = l_task ⊙ (1 + t·(l_ref_target ⊘ l_ref_source − 1))",
}


class MergeArgumentError(UserError):
    """A merge setting (--t, --method, --rank) that cannot apply."""


def resolve_method(peft_type: str, method: Optional[str], rank: Optional[int]) -> str:
    """The rule to apply: LoRA defaults to the exact ΔW rule, IA3 has only the ratio rule."""
    allowed = LORA_METHODS if peft_type == "LORA" else IA3_METHODS
    method = method or allowed[0]
    if method not in allowed:
        raise AdapterMismatchError(
            f"--method {method}: does not apply to {peft_type} adapters; choose from {', '.join(allowed)}"
        )
    if method == "delta-svd" and (rank is None or rank < 1):
        raise MergeArgumentError(f"--rank {rank}: method 'delta-svd' needs a rank of at least 1")
    if method != "delta-svd" and rank is not None:
        raise MergeArgumentError(f"--rank {rank}: a rank applies only to --method delta-svd, not {method!r}")
    return method


def _merge_lora(adapters: Dict[str, Adapter], t: float, method: str, rank: Optional[int]):
    factors = {role: lora_factors(adapter) for role, adapter in adapters.items()}
    scalings = {
        role: {module: lora_scaling(adapters[role].config, module, a.shape[0]) for module, (a, _) in fs.items()}
        for role, fs in factors.items()
    }
    details = {}
    if method == "per-factor":
        shapes = {
            role: {m: (tuple(a.shape), tuple(b.shape)) for m, (a, b) in fs.items()} for role, fs in factors.items()
        }
        check_same_modules(shapes, adapters, "factor shapes (lora_A, lora_B)")
        for module, scaling in scalings["task"].items():
            others = {role: scalings[role][module] for role in ROLES}
            if len(set(others.values())) > 1:
                raise AdapterMismatchError(
                    f"module {module}: the per-factor rule needs one LoRA scaling (alpha/r) for all three adapters, "
                    f"got {others}; use method 'delta'"
                )
        merged = rules.lora_per_factor([factors[role] for role in ROLES], t)
        config = dict(adapters["task"].config)
    else:
        shapes = {role: {m: (b.shape[0], a.shape[1]) for m, (a, b) in fs.items()} for role, fs in factors.items()}
        check_same_modules(shapes, adapters, "ΔW shape (out, in)")
        merged, merged_rank = rules.lora_delta([factors[role] for role in ROLES], [scalings[r] for r in ROLES], t)
        if method == "delta-svd":
            errors = {}
            for module, (a, b) in merged.items():
                a_r, b_r, singular_values = rules.svd_compress(a, b, rank)
                merged[module] = (a_r, b_r)
                total = singular_values.square().sum()
                errors[module] = float((singular_values[rank:].square().sum() / total).sqrt()) if total > 0 else 0.0
            details["svd"] = {
                "exact_rank": merged_rank,
                "rank": rank,
                "relative_error": "‖ΔW − ΔW_r‖_F / ‖ΔW‖_F per module",
                "max_relative_error": max(errors.values()),
                "mean_relative_error": sum(errors.values()) / len(errors),
            }
            merged_rank = rank
        # lora_alpha = r without rsLoRA makes the scaling 1: the factors above already carry it.
        config = dict(
            adapters["task"].config,
            r=merged_rank,
            lora_alpha=merged_rank,
            use_rslora=False,
            rank_pattern={},
            alpha_pattern={},
        )
    tensors = {}
    for module, (a, b) in merged.items():
        tensors[module + LORA_SUFFIXES["A"]] = a
        tensors[module + LORA_SUFFIXES["B"]] = b
    return config, tensors, details


def _merge_ia3(adapters: Dict[str, Adapter], t: float):
    vectors = {role: ia3_vectors(adapter) for role, adapter in adapters.items()}
    shapes = {role: {m: tuple(v.shape) for m, v in vs.items()} for role, vs in vectors.items()}
    check_same_modules(shapes, adapters, "ia3_l shape")
    merged = rules.ia3_ratio([vectors[role] for role in ROLES], t)
    return dict(adapters["task"].config), {module + ".ia3_l": v for module, v in merged.items()}, {}


def _package_version() -> str:
    try:
        return version("transformers_align")
    except PackageNotFoundError:
        return "unknown"


def merge_adapters(
    task,
    ref_target,
    ref_source,
    t: float,
    out,
    method: Optional[str] = None,
    rank: Optional[int] = None,
    check_base_model: bool = True,
    overwrite: bool = False,
) -> dict:
    """Merge three PEFT adapter directories by AdaMergeX and write the result to ``out``; return the report.

    ``task`` is the task adapter in the source language, ``ref_target`` and ``ref_source`` the reference-task
    adapters in the target and source language. LoRA ``method``: ``delta`` (default, exact at rank
    r1+r2+r3), ``delta-svd`` (compressed to ``rank``) or ``per-factor`` (the reference code's rule). IA3:
    ``ratio``. Only adapter files are read; the output is an adapter directory that
    ``PeftModel.from_pretrained`` loads, with ``merge_report.json`` beside it, written atomically.
    """
    if not math.isfinite(t):
        raise MergeArgumentError(f"--t {t}: the weight of the language gap must be a finite number")
    refuse_output_over_inputs({"--out": out}, {"--task": task, "--ref_target": ref_target, "--ref_source": ref_source})
    out = check_output_dir(out, overwrite)
    paths = dict(zip(ROLES, (task, ref_target, ref_source)))
    for role, path in paths.items():  # every folder is checked before any weights are read
        read_adapter_config(path, FLAGS[role])
        adapter_weights_file(path, FLAGS[role])
    adapters = {role: load_adapter(path, FLAGS[role]) for role, path in paths.items()}
    peft_type = check_compatible(adapters, check_base_model)
    method = resolve_method(peft_type, method, rank)
    if peft_type == "LORA":
        config, tensors, details = _merge_lora(adapters, t, method, rank)
    else:
        config, tensors, details = _merge_ia3(adapters, t)
    dtype = next(iter(adapters["task"].tensors.values())).dtype
    tensors = {key: tensor.to(dtype) for key, tensor in tensors.items()}
    report = {
        "merge": "AdaMergeX",
        "peft_type": peft_type,
        "method": method,
        "formula": FORMULAS[method],
        "t": t,
        "inputs": {
            role: {
                "path": str(adapter.path.resolve()),
                "base_model_name_or_path": adapter.config.get("base_model_name_or_path"),
                "weights_sha256": file_sha256(adapter.weights_file),
                **(
                    {"r": adapter.config.get("r"), "lora_alpha": adapter.config.get("lora_alpha")}
                    if peft_type == "LORA"
                    else {}
                ),
            }
            for role, adapter in adapters.items()
        },
        "output": {
            "path": str(Path(out).resolve()),
            "modules": len(tensors) // (2 if peft_type == "LORA" else 1),
            "dtype": str(dtype).replace("torch.", ""),
            **({"r": config["r"], "lora_alpha": config["lora_alpha"]} if peft_type == "LORA" else {}),
        },
        **details,
        "transformers_align_version": _package_version(),
    }
    # The merged adapter is on the task adapter's base: it keeps that base's portable name, if recorded.
    record = adapters["task"].path / BASE_MODEL_RECORD
    extra_files = {BASE_MODEL_RECORD: record.read_bytes()} if record.is_file() else {}
    write_adapter_dir(out, config, tensors, report, overwrite, extra_files)
    return report
