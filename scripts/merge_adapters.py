"""Merge a task adapter with two reference-task adapters by AdaMergeX into a new PEFT adapter directory:
task + t·(ref_target − ref_source) for LoRA (in ΔW space), task ⊙ (1 + t·(ref_target/ref_source − 1)) for IA3.
Reads adapter files only; no base model is loaded."""

import json
from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.merging import IA3_METHODS, LORA_METHODS, merge_adapters


@dataclass
class MergeArguments:
    task: str = option(help="task adapter directory, trained in the source language")
    ref_target: str = option(aliases=["--ref-target"], help="reference-task adapter directory, target language")
    ref_source: str = option(aliases=["--ref-source"], help="reference-task adapter directory, source language")
    out: str = option(help="output adapter directory (written atomically)")
    t: float = option(1.0, help="weight of the language gap")
    method: Optional[str] = option(
        None,
        choices=LORA_METHODS + IA3_METHODS,
        help="LoRA: delta (default, exact at rank r1+r2+r3), delta-svd (compress to "
        "--rank), "
        "per-factor (the reference code's rule on A and B separately); IA3: ratio (default)",
    )
    rank: Optional[int] = option(None, help="target rank for --method delta-svd")
    allow_base_mismatch: bool = option(
        False,
        aliases=["--allow-base-mismatch"],
        help="do not require the same base_model_name_or_path in the three adapter configs",
    )
    overwrite: bool = option(False, help="replace --out if it exists")


def parse_args(argv=None):
    return parse_arguments((MergeArguments,), argv, __doc__)


def main(argv=None):
    (args,) = parse_args(argv)
    report = merge_adapters(
        args.task,
        args.ref_target,
        args.ref_source,
        t=args.t,
        out=args.out,
        method=args.method,
        rank=args.rank,
        check_base_model=not args.allow_base_mismatch,
        overwrite=args.overwrite,
    )
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return report


if __name__ == "__main__":
    exit_on_user_error(main)
