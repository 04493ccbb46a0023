"""The core install is light: pyproject's core dependencies leave DeepSpeed, the metrics and plotting to extras
that the README's install (``.[dev,real]``) still brings; without them every module imports, and a command that
needs one names the extra."""

import subprocess
import sys

import pytest

from tests.support import REPO
from transformers_align.extras import EXTRA_OF

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None  # as if not installed\n"


def _distribution(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()


def test_the_core_dependencies_leave_the_extras_out_and_real_and_dev_bring_them():
    core = {_distribution(r) for r in PROJECT["dependencies"]}
    extras = PROJECT["optional-dependencies"]
    assert not core & {"deepspeed", "seqeval", "sacrebleu", "levenshtein", "matplotlib", "evaluate"}
    assert {"torch", "transformers", "peft", "accelerate", "datasets"} <= core
    in_extras = {name: {_distribution(r) for r in extras[name]} for name in ("deepspeed", "metrics", "plot")}
    for module, extra in EXTRA_OF.items():
        assert module in in_extras[extra], (module, extra)
    assert extras["all"] == ["transformers_align[deepspeed,metrics,plot]"]
    assert "transformers_align[all]" in extras["real"] and "transformers_align[all]" in extras["dev"]


def test_without_the_extras_every_module_imports_and_a_command_names_the_missing_extra(tmp_path):
    code = BLOCK.format(names=sorted(EXTRA_OF)) + (
        "import importlib, pkgutil, transformers_align\n"
        "for m in pkgutil.walk_packages(transformers_align.__path__, 'transformers_align.'):\n"
        "    importlib.import_module(m.name)\n"
        "from transformers_align.errors import UserError\n"
        "try:\n"
        "    from transformers_align.evaluation.wmt import score_translations\n"
        "    score_translations(['a'], ['a'], 'fr')\n"
        "except UserError as error:\n"
        "    print(error)\n"
        "from transformers_align.training.arguments import AlignmentTrainingArguments\n"
        "try:\n"
        f"    AlignmentTrainingArguments(output_dir={str(tmp_path)!r}, deepspeed='ds.json', report_to='none')\n"
        "except UserError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("BLEU and chrF needs sacrebleu, which is not installed")
    assert "pip install 'transformers_align[metrics]'" in lines[0]
    assert lines[1].startswith("--deepspeed ds.json needs deepspeed") and "transformers_align[deepspeed]" in lines[1]
