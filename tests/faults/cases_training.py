"""Fault cases of ``scripts.run_clm_lora`` and the training recipes."""

from tests.faults.harness import FaultCase, python_module

TRAIN = (
    "--model_name_or_path",
    "{tiny}",
    "--train_file",
    "{data}/train_baseline.json",
    "--output_dir",
    "{tmp}/out",
    "--do_train",
    "--report_to",
    "none",
)

CASES = [
    FaultCase(
        name="missing train file",
        area="data",
        command=python_module("run_clm_lora", *TRAIN[:2], "--train_file", "{tmp}/nope.jsonl", *TRAIN[4:]),
        cause=r"nope\.jsonl",
    )
]
