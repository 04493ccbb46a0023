"""Exit 2 with one line if a training run clearly cannot fit this device's memory (the launcher's pre-check).

It takes run_clm_lora's own flags for what decides the memory (batch, block, precision, gradient
checkpointing, adapter, DeepSpeed), so the launcher passes the same ones to both, and it runs before any
model loads: the estimate reads the model's config only (``transformers_align.training.memory``).
"""

import sys
from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import read_json
from transformers_align.training.memory import RunSettings, check_fits, device_memory, gib, model_shape, needed_bytes


@dataclass
class RunFitArguments:
    model_name_or_path: str = option(help="the model to train (folder or hub id)")
    per_device_train_batch_size: int = option(help="rows per device and step")
    block_size: int = option(help="tokens per row at most")
    bf16: bool = option(False, help="bf16 mixed precision")
    fp16: bool = option(False, help="fp16 mixed precision")
    bf16_full_eval: bool = option(False, help="(taken for the launcher's flags; no effect on training memory)")
    torch_dtype: Optional[str] = option(None, help="dtype the weights are loaded in (bfloat16, float16, ...)")
    gradient_checkpointing: bool = option(False, help="gradient checkpointing")
    use_lora: bool = option(False, help="train a LoRA/IA3 adapter (else all weights)")
    lora_config: Optional[str] = option(None, help="the adapter's JSON config")
    deepspeed: Optional[str] = option(None, help="a DeepSpeed config (ZeRO-2 splits gradients and moments)")
    processes: int = option(1, help="processes of the run on this machine (they share its RAM on a CPU)")


def main(argv=None):
    (args,) = parse_arguments((RunFitArguments,), argv, __doc__)
    import torch

    adapter = read_json(args.lora_config) if args.use_lora and args.lora_config else {}
    run = RunSettings(
        batch_size=args.per_device_train_batch_size,
        block_size=args.block_size,
        precision="bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        half_weights=args.torch_dtype in ("bfloat16", "float16"),
        gradient_checkpointing=args.gradient_checkpointing,
        lora=args.use_lora,
        lora_dropout=adapter.get("lora_dropout", 0.0),
        processes=args.processes,
        zero=bool(args.deepspeed),
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    try:
        shape = model_shape(args.model_name_or_path, adapter)
    except (OSError, ValueError):
        return None  # no readable config or an unsupported model: the run itself says so, in its own words
    budget, available, owner = device_memory(run.device)
    found = check_fits(shape, run, budget, owner)
    if needed_bytes(found, run) > available:
        print(
            f"warning: this run needs up to about {gib(needed_bytes(found, run))} (every row at the block size), "
            f"and {owner} {gib(available)} available now: it may be killed for memory if other programs keep theirs",
            file=sys.stderr,
        )
    return found


if __name__ == "__main__":
    exit_on_user_error(main)
