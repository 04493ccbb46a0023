"""Fault cases of the objectives: composing them by name, the consistency objective's data and settings."""

from tests.faults.cases_training import TRAIN
from tests.faults.harness import FaultCase, python_module

CASES = [
    FaultCase(
        name="unknown objective",
        area="settings",
        command=python_module("run_clm_lora", *TRAIN, "--training_mode", "joint", "--objectives", "task,consistancy"),
        cause=r"--objectives task,consistancy: unknown objective 'consistancy'; known: task, alignment, consistency",
    ),
    FaultCase(
        name="steps per objective not matching the objectives",
        area="settings",
        command=python_module(
            "run_clm_lora",
            *TRAIN,
            "--training_mode",
            "alternate",
            "--objectives",
            "task,consistency",
            "--steps_per_objective",
            "1",
        ),
        cause=r"--steps_per_objective 1: one count >= 1 for each of the objectives task,consistency",
    ),
    FaultCase(
        name="consistency without translated task rows",
        area="data",
        command=python_module("run_clm_lora", *TRAIN, "--training_mode", "joint", "--objectives", "task,consistency"),
        cause=r"train_baseline\S*\.json: mode 'joint' needs parallel task rows \(prefix, text and prefix_translated",
    ),
    FaultCase(
        name="massive builder given translations and pairs",
        area="data",
        command=python_module(
            "build_massive_training_data",
            "--massive_files",
            "{data}/massive/en-US.jsonl",
            "--translated_files",
            "{data}/massive/fr-FR.jsonl",
            "--pairs",
            "{data}/pairs.tsv",
            "--output",
            "{tmp}/rows.jsonl",
        ),
        cause=r"--translated_files and --pairs: a row holds a translated prompt or a pair, not both",
    ),
]
