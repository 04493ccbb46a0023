"""Fault cases of the alignment analysis and the layer choice (scripts.analyze_alignment, scripts.choose_layer)."""

import shutil

from tests.faults.harness import FaultCase, python_module
from tests.support import REPO

PAIRS = "data_example/afp/en-zh.tsv"

CASES = [
    FaultCase(
        name="layer chosen on fewer than 2 pairs",
        area="evaluation",
        command=python_module("choose_layer", "--model", "{tiny}", "--pairs", PAIRS, "--held_out", "1"),
        cause=r"--held_out 1: retrieval needs at least 2 pairs",
    ),
    FaultCase(
        name="two pairs files of one name",
        area="evaluation",
        command=python_module(
            "analyze_alignment",
            "--model",
            "{tiny}",
            "--pairs",
            f"{PAIRS},{{tmp}}/en-zh.dev.tsv",
            "--output_dir",
            "{tmp}/out",
        ),
        cause=r"--pairs .*en-zh\.tsv,.*en-zh\.dev\.tsv: two files share a name before the first dot",
        setup=lambda tmp, tiny: shutil.copy(REPO / PAIRS, tmp / "en-zh.dev.tsv"),
    ),
]
