"""AdaMergeX adapter merging on adapter files alone: LoRA by ΔW or per factor, IA3 by ratio."""

from transformers_align.merging.adapter_files import Adapter, ia3_vectors, load_adapter, lora_factors, lora_scaling
from transformers_align.merging.compatibility import AdapterMismatchError, check_compatible
from transformers_align.merging.merge import FORMULAS, IA3_METHODS, LORA_METHODS, merge_adapters
from transformers_align.merging.rules import ia3_ratio, lora_delta, lora_per_factor, svd_compress

__all__ = [
    "Adapter",
    "AdapterMismatchError",
    "FORMULAS",
    "IA3_METHODS",
    "LORA_METHODS",
    "check_compatible",
    "ia3_ratio",
    "ia3_vectors",
    "load_adapter",
    "lora_delta",
    "lora_factors",
    "lora_per_factor",
    "lora_scaling",
    "merge_adapters",
    "svd_compress",
]
