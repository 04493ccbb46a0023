"""The package is layered: no module imports one of a higher layer (nested imports included), so the
model side never depends on data or training code, and data never on the trainer's sampler."""

import ast

from tests.support import REPO

PACKAGE = REPO / "src" / "transformers_align"
# Lowest first; a module belongs to the layer of its longest matching prefix.
LAYERS = (
    ("errors", "paths", "padding", "cli", "tiny", "lazy", "extras"),
    ("losses",),
    # the model-side computations the objectives call
    ("modeling.settings", "modeling.registry", "modeling.causal_lm_loss", "modeling.representation"),
    ("modeling.consistency", "modeling.loading", "modeling.gguf_checkpoint"),
    ("objectives",),
    ("modeling",),  # the aligned classes, whose forward computes the objectives
    ("data",),
    ("training",),
    ("evaluation", "merging"),
)


def _layer(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} has no layer in LAYERS"
    return max(matches)[1]


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the top-level lazy name table imports nothing at import time
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def test_no_module_imports_a_higher_layer():
    wrong = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("transformers_align."):
                target = node.module.removeprefix("transformers_align.")
                if _layer(target) > _layer(module):
                    wrong.append(f"{module} (line {node.lineno}) imports {target}")
    assert not wrong, "\n".join(wrong)
