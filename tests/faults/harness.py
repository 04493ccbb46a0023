"""The fault battery's machinery: a case is a command a user could type with one mistake in it.

Each case runs as a subprocess from the checkout, the way a user runs it (``python -m scripts...``,
``bash scripts/...sh``, torchrun), in a fresh folder of its own. It asserts what docs/reliability.md promises:
the exit code, no traceback, a last stderr line that names the cause, and that no file the user had (every
file in the case's folder and in the shared model folder before the run) was changed (its bytes or its
modification time), removed or added to. Cases are independent: test_faults.py runs several at once.

Placeholders in ``command`` and ``env`` values: ``{tmp}`` the case's folder, ``{tiny}`` the shared tiny
model, ``{data}`` data_example/, ``{python}`` this interpreter.
"""

import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

from tests.support import REPO
from tests.support.processes import cpu_env, run

AREAS = ("data", "settings", "runs", "resumes", "evaluation", "merging", "distributed")


@dataclass(frozen=True)
class FaultCase:
    name: str  # what the user got wrong, in a few words (the table's first column)
    area: str  # one of AREAS
    command: Sequence[str]
    cause: str  # regex the last stderr line must match: the flag or file, and what is allowed
    setup: Optional[Callable[[Path, Path], None]] = None  # setup(tmp, tiny) writes the user's files
    env: Dict[str, str] = field(default_factory=dict)
    exit_code: int = 2
    may_create: Tuple[str, ...] = ()  # paths under {tmp} the command may write although it refuses (logs)
    timeout: int = 300

    def __post_init__(self):
        assert self.area in AREAS, self.area


def _snapshot(*folders: Path) -> Dict[str, str]:
    state = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:  # a rewrite with the same bytes counts too
                state[str(path)] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {path.stat().st_mtime_ns}"
            elif path.is_dir():
                state[str(path)] = "folder"
    return state


def _fill(text: str, values: Dict[str, str]) -> str:
    return text.format(**values)


@dataclass(frozen=True)
class Outcome:
    """What a case's run left: its exit code, output, and the user's files before and after."""

    returncode: int
    stdout: str
    stderr: str
    before: Dict[str, str]
    after: Dict[str, str]


def execute(case: FaultCase, tmp: Path, tiny: Path) -> Outcome:
    """Write the case's files into ``tmp`` and run its command (cases are independent: several may run at once)."""
    if case.setup is not None:
        case.setup(tmp, tiny)
    values = {"tmp": str(tmp), "tiny": str(tiny), "data": str(REPO / "data_example"), "python": sys.executable}
    command = [_fill(part, values) for part in case.command]
    env = cpu_env(HF_DATASETS_CACHE=str(tmp.parent / f"{tmp.name}-cache"), HF_HUB_OFFLINE="1")
    env.update({key: _fill(value, values) for key, value in case.env.items()})
    before = _snapshot(tmp, tiny)
    result = run(command, case.timeout, cwd=REPO, env=env, stdin=subprocess.DEVNULL)  # a timeout ends its children
    return Outcome(result.returncode, result.stdout, result.stderr, before, _snapshot(tmp, tiny))


def check(case: FaultCase, outcome: Outcome, tmp: Path) -> None:
    """The promises of docs/reliability.md for one case's ``Outcome``."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    shown = f"{case.name}: exit {outcome.returncode}\n{outcome.stderr[-3000:]}\n{outcome.stdout[-1000:]}"
    assert outcome.returncode == case.exit_code, shown
    assert "Traceback" not in outcome.stderr + outcome.stdout, shown
    assert re.search(case.cause, last), f"{case.name}: last stderr line {last!r} does not match {case.cause!r}"
    before, after = outcome.before, outcome.after
    allowed = {str(tmp / name) for name in case.may_create}
    created = {path for path in after.keys() - before.keys() if not any(path.startswith(a) for a in allowed)}
    assert not created, f"{case.name}: created {sorted(created)}"
    changed = [path for path, digest in before.items() if after.get(path) != digest]
    assert not changed, f"{case.name}: changed or removed {changed}"


def python_module(script: str, *arguments: str) -> Tuple[str, ...]:
    """``python -m scripts.<script> ...`` as a user runs it from the checkout."""
    return ("{python}", "-m", f"scripts.{script}", *arguments)


def recipe(script: str) -> Tuple[str, ...]:
    """``bash scripts/<script>.sh``; the case's ``env`` holds the user's variables."""
    return ("bash", f"scripts/{script}.sh")
