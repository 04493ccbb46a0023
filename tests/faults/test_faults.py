"""The fault battery (docs/reliability.md): every case a one-line refusal, exit code as promised, nothing of
the user's changed. The cases live in the ``cases_*`` modules, one per area of the library."""

import pytest

from tests.faults import cases_recipes, cases_training
from tests.faults.harness import run_case

CASES = [*cases_training.CASES, *cases_recipes.CASES]


def test_case_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_fault(case, tmp_path, tiny_model_dir):
    folder = tmp_path / "user"
    folder.mkdir()
    run_case(case, folder, tiny_model_dir)
