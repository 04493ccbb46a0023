"""Check that the three adapters of an AdaMergeX merge can be combined: same base, type, targets and shapes."""

from typing import Dict

from transformers_align.errors import UserError
from transformers_align.merging.adapter_files import Adapter

SUPPORTED_TYPES = ("LORA", "IA3")

# Config fields that must agree across the three adapters, per adapter type.
SHARED_FIELDS = {
    "LORA": (
        "task_type",
        "target_modules",
        "fan_in_fan_out",
        "layers_to_transform",
        "layers_pattern",
        "layer_replication",
        "exclude_modules",
    ),
    "IA3": ("task_type", "target_modules", "feedforward_modules", "fan_in_fan_out", "exclude_modules"),
}

# Config fields that make an adapter more than plain factors or vectors: (field, value meaning "off").
UNSUPPORTED_FEATURES = {
    "LORA": (
        ("use_dora", False),
        ("bias", "none"),
        ("lora_bias", False),
        ("modules_to_save", None),
        ("trainable_token_indices", None),
    ),
    "IA3": (("modules_to_save", None),),
}


class AdapterMismatchError(UserError):
    """The adapters given to a merge cannot be combined."""


def _normalised(field: str, value):
    """Compare target lists as sets and treat missing, empty and null as the same."""
    if value in (None, [], {}, ""):
        return None
    if field in ("target_modules", "feedforward_modules", "modules_to_save", "exclude_modules") and isinstance(
        value, (list, tuple)
    ):
        return sorted(value)
    return value


def _describe(adapters: Dict[str, Adapter], values: Dict[str, object]) -> str:
    return "; ".join(f"{role} ({adapters[role].path}): {values[role]!r}" for role in adapters)


def check_compatible(adapters: Dict[str, Adapter], check_base_model: bool = True) -> str:
    """Raise :class:`AdapterMismatchError` naming the field and the adapters unless all can be merged.

    ``adapters`` maps a role (task, ref_target, ref_source) to its adapter. Returns the shared PEFT type.
    Tensor names and shapes are compared by :func:`check_same_tensors` once the tensors are split.
    """
    types = {role: adapter.peft_type for role, adapter in adapters.items()}
    if len(set(types.values())) > 1:
        raise AdapterMismatchError(f"the adapters are of different types: {_describe(adapters, types)}")
    peft_type = next(iter(types.values()))
    if peft_type not in SUPPORTED_TYPES:
        raise AdapterMismatchError(
            f"adapter type {peft_type!r} is not supported; AdaMergeX merges {' and '.join(SUPPORTED_TYPES)}"
        )
    for role, adapter in adapters.items():
        for field, off in UNSUPPORTED_FEATURES[peft_type]:
            if _normalised(field, adapter.config.get(field, off)) != _normalised(field, off):
                raise AdapterMismatchError(
                    f"{role} adapter {adapter.path} sets {field}={adapter.config[field]!r}; the merge supports "
                    f"only {field}={off!r}"
                )
    fields = SHARED_FIELDS[peft_type] + (("base_model_name_or_path",) if check_base_model else ())
    for field in fields:
        values = {role: adapter.config.get(field) for role, adapter in adapters.items()}
        if len({repr(_normalised(field, value)) for value in values.values()}) > 1:
            hint = (
                " (pass --allow_base_mismatch if these name the same model)"
                if field == "base_model_name_or_path"
                else ""
            )
            raise AdapterMismatchError(f"the adapters differ in {field}: {_describe(adapters, values)}{hint}")
    return peft_type


def check_same_modules(shapes: Dict[str, Dict[str, tuple]], adapters: Dict[str, Adapter], what: str):
    """Every role must adapt the same modules, with equal ``what`` (shapes given per role and module)."""
    first, *others = shapes
    for role in others:
        only_first = sorted(set(shapes[first]) - set(shapes[role]))
        only_other = sorted(set(shapes[role]) - set(shapes[first]))
        if only_first or only_other:
            raise AdapterMismatchError(
                f"{first} ({adapters[first].path}) and {role} ({adapters[role].path}) adapt different modules: "
                f"only in {first}: {only_first[:3]}, only in {role}: {only_other[:3]}"
            )
        for module, shape in shapes[first].items():
            if shapes[role][module] != shape:
                raise AdapterMismatchError(
                    f"module {module}: {first} has {what} {shape}, {role} has {shapes[role][module]}"
                )
