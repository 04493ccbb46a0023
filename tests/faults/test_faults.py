"""The fault battery (docs/reliability.md): every case a one-line refusal, exit code as promised, nothing of
the user's changed. The cases live in the ``cases_*`` modules, one per area of the library."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults import (
    cases_alignment_analysis,
    cases_evaluation,
    cases_merging,
    cases_objectives,
    cases_outputs,
    cases_recipes,
    cases_training,
    table,
)
from tests.faults.harness import check, execute

CASES = [
    *cases_training.CASES,
    *cases_evaluation.CASES,
    *cases_merging.CASES,
    *cases_outputs.CASES,
    *cases_alignment_analysis.CASES,
    *cases_objectives.CASES,
    *cases_recipes.CASES,
]


def test_the_docs_hold_the_current_table():
    written = table.between_markers(table.DOCS.read_text(encoding="utf-8"))
    assert written == table.render(CASES), "regenerate it: python -m tests.faults.table --write"


def test_case_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.fixture(scope="session")
def outcomes(request, tmp_path_factory, tiny_model_dir):
    """The selected cases, started as soon as the first one is needed, one per CPU core at a time: each is a
    process that mostly imports, so on 2 cores the battery takes half the time. Case name -> (folder, future)."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_fault" and item.module.__name__ == __name__
    ]
    folders = {case.name: tmp_path_factory.mktemp("fault") / "user" for case in selected}
    for folder in folders.values():
        folder.mkdir()
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
    started = {case.name: pool.submit(execute, case, folders[case.name], tiny_model_dir) for case in selected}
    yield {name: (folders[name], future) for name, future in started.items()}
    pool.shutdown(cancel_futures=True)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_fault(case, outcomes):
    folder, outcome = outcomes[case.name]
    check(case, outcome.result(), folder)  # a case's own exception (a timeout) is raised here, in its test
