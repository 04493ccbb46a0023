"""The fork view: unified diffs that add the aligned classes to transformers v4.43.4's own model files.

Each ``modeling_<type>.py`` gets, appended at its end, a generated section: the inlined source of the
modules behind ``AlignedCausalLMMixin`` (found by following their ``from transformers_align...``
imports), then ``class Align<X>ForCausalLM(AlignedCausalLMMixin, <X>ForCausalLM)``. Each model
``__init__.py`` gets the class in its exports. Nothing upstream is changed, only added to.
"""

import ast
import difflib
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import transformers

from transformers_align.modeling.aligned import AlignedCausalLMMixin
from transformers_align.modeling.classes import ALIGNED_CLASSES

TRANSFORMERS_VERSION = "4.43.4"
PACKAGE = "transformers_align"
COMMAND = "python -m scripts.make_patches"
RULE = "# " + "-" * 110 + "\n"


class ForkViewError(RuntimeError):
    """The fork view cannot be generated (or applied) as asked; the message says what to change."""


def _source_of(module_name):
    return Path(importlib.import_module(module_name).__file__).read_text(encoding="utf-8")


def _display(module_name):
    return module_name.replace(".", "/") + ".py"


def _intra_package_import(node):
    return isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE


def inlined_modules(root=AlignedCausalLMMixin.__module__):
    """``(module name, source)`` of ``root`` and every package module it imports, dependencies first."""
    ordered, visiting = [], set()

    def visit(name):
        if name in visiting or any(name == done for done, _ in ordered):
            return
        visiting.add(name)
        if hasattr(importlib.import_module(name), "__path__"):
            raise ForkViewError(f"{_display(name)} is a package: inlined code must import from modules, not packages")
        source = _source_of(name)
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if _intra_package_import(node) and node not in tree.body:
                raise ForkViewError(f"{_display(name)} line {node.lineno}: a nested {PACKAGE} import cannot be inlined")
            if isinstance(node, ast.ImportFrom) and node.level:
                raise ForkViewError(f"{_display(name)} line {node.lineno}: relative imports cannot be inlined")
        for node in tree.body:
            if _intra_package_import(node):
                visit(node.module)
        ordered.append((name, source))

    visit(root)
    return ordered


def _bound_names(node):
    """Names a top-level statement binds, with a key telling what each is bound to (None: an import)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name.split(".")[0]): None for alias in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name: ast.dump(node)}
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    names = [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]
    return {name: ast.dump(node) for name in names}


def _top_level_statements(body):
    """Statements run at module level, including those inside top-level if/try/with/for blocks."""
    for node in body:
        if isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            nested = node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            nested += [s for handler in getattr(node, "handlers", []) for s in handler.body]
            yield from _top_level_statements(nested)
        else:
            yield node


def _imported_object(node, name, package):
    """The object a top-level import binds to ``name``, imported for real (relative to ``package``)."""
    for alias in node.names:
        if (alias.asname or alias.name.split(".")[0]) != name:
            continue
        if isinstance(node, ast.Import):
            return importlib.import_module(alias.name if alias.asname else name)
        module = importlib.import_module(importlib.util.resolve_name("." * node.level + (node.module or ""), package))
        return (
            getattr(module, alias.name)
            if hasattr(module, alias.name)
            else importlib.import_module(f"{module.__name__}.{alias.name}")
        )
    raise AssertionError(f"{name} is not bound by this import")


def _binding(node, name, package):
    key = _bound_names(node)[name]
    return ("import", id(_imported_object(node, name, package))) if key is None else ("code", key)


def _bindings(tree):
    found = {}
    for node in _top_level_statements(tree.body):
        for name in _bound_names(node):
            found.setdefault(name, []).append(node)
    return found


def check_collisions(upstream_source, upstream_package, upstream_label, inlined):
    """Fail if a name the inlined code binds at top level is bound differently in the upstream file.

    ``inlined`` maps each name to ``(statement, label)``. Imports of the same object and identical
    statements (``logger = logging.get_logger(__name__)``) are no collision. Returns the names the
    upstream file already imports as the same object, whose imports the section can leave out.
    """
    upstream = _bindings(ast.parse(upstream_source))
    shared_imports = set()
    for name in sorted(set(upstream) & set(inlined)):
        node, label = inlined[name]
        ours = _binding(node, name, PACKAGE)
        for theirs in upstream[name]:
            if _binding(theirs, name, upstream_package) != ours:
                raise ForkViewError(
                    f"{upstream_label} line {theirs.lineno} already defines {name!r}, and {label} line {node.lineno} "
                    f"binds it to something else; rename it in {label} and run `{COMMAND}` again"
                )
        if ours[0] == "import":
            shared_imports.add(name)
    return shared_imports


def _import_lines(imports, skip):
    """Import statements for ``imports`` (one ast node per name), merged per module, minus ``skip``."""
    from_imports, plain = {}, []
    for node, alias in imports:
        if (alias.asname or alias.name.split(".")[0]) in skip:
            continue
        text = alias.name + (f" as {alias.asname}" if alias.asname else "")
        if isinstance(node, ast.Import):
            line = f"import {text}\n"
            if line not in plain:
                plain.append(line)
        elif text not in from_imports.setdefault(node.module, []):
            from_imports[node.module].append(text)
    return sorted(plain) + sorted(
        f"from {module} import {', '.join(names)}\n" for module, names in from_imports.items() if names
    )


def _module_body(module_name, source, tree):
    """The module's code without its docstring and top-level imports, its docstring as comment lines."""
    lines = source.splitlines(keepends=True)
    dropped = set()
    for node in tree.body:
        docstring = node is tree.body[0] and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if docstring or isinstance(node, (ast.Import, ast.ImportFrom)):
            dropped.update(range(node.lineno - 1, node.end_lineno))
    body = "".join(line for i, line in enumerate(lines) if i not in dropped).strip("\n")
    doc = (ast.get_docstring(tree) or "").splitlines()
    header = [f"# --- {_display(module_name)}" + (f": {doc[0]}" if doc else "")]
    header += [f"# {line}".rstrip() for line in doc[1:]]
    return "\n".join(header) + "\n\n\n" + body + "\n"


def fork_section(upstream_source, upstream_package, upstream_label, aligned_class_source, modules=None):
    """The generated section appended to one upstream file, after checking it collides with nothing there."""
    modules = inlined_modules() if modules is None else modules
    inlined, imports, bodies = {}, [], []
    for module_name, source in modules:
        tree = ast.parse(source)
        label = _display(module_name)
        for node in tree.body:
            if _intra_package_import(node):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports += [(node, alias) for alias in node.names]
            for name in _bound_names(node):
                if name in inlined and _binding(node, name, PACKAGE) != _binding(inlined[name][0], name, PACKAGE):
                    raise ForkViewError(
                        f"{label} line {node.lineno} and {inlined[name][1]} both define {name!r}; rename one"
                    )
                inlined.setdefault(name, (node, label))
        bodies.append(_module_body(module_name, source, tree))
    class_tree = ast.parse(aligned_class_source)
    aligned_class = class_tree.body[0].name
    inlined[aligned_class] = (class_tree.body[0], "the aligned class")
    shared = check_collisions(upstream_source, upstream_package, upstream_label, inlined)
    names = ", ".join(_display(name).removeprefix(PACKAGE + "/") for name, _ in modules)
    section = [
        RULE,
        f"# transformers_align fork view: {aligned_class}, alignment of layer-L states of parallel sentences.\n",
        f"# GENERATED by `{COMMAND}` in transformers_align, from these of its files:\n",
        f"# {names}.\n",
        "# Change those files and regenerate; do not edit this section by hand.\n",
        RULE,
        "".join(_import_lines(imports, shared)),
    ]
    section += ["\n\n" + body for body in bodies]
    section.append("\n\n" + aligned_class_source.rstrip("\n") + "\n")
    if "__all__" in _bindings(ast.parse(upstream_source)):
        section.append(f'\n\n__all__ = [*__all__, "{aligned_class}"]\n')
    return "".join(section)


def add_export(init_source, stock_name, aligned_name):
    """A model ``__init__.py`` that also exports ``aligned_name``, listed just before each ``stock_name``."""
    tree = ast.parse(init_source)
    spots = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == stock_name]
    spots += [a for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names if a.name == stock_name]
    if len(spots) != 2:
        raise ForkViewError(
            f"expected {stock_name} once in _import_structure and once in the TYPE_CHECKING import, found {len(spots)}"
        )
    lines = init_source.splitlines(keepends=True)
    for spot in sorted(spots, key=lambda s: (s.lineno, s.col_offset), reverse=True):
        line = lines[spot.lineno - 1]
        entry = line[spot.col_offset : spot.end_col_offset]
        new_entry = entry.replace(stock_name, aligned_name)
        if line.strip() == entry + ",":  # one entry per line: add a line
            lines.insert(spot.lineno - 1, line.replace(entry, new_entry))
        else:
            lines[spot.lineno - 1] = line[: spot.col_offset] + new_entry + ", " + line[spot.col_offset :]
    return "".join(lines)


def unified_diff(old, new, repo_path):
    """A deterministic unified diff of one file (no timestamps), with a/ and b/ paths for ``patch -p1``."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{repo_path}",
            tofile=f"b/{repo_path}",
        )
    )


def _repo_path(module_name):
    return "src/" + module_name.replace(".", "/") + ".py"


def fork_view():
    """``{patch file name: unified diff}`` for every aligned class and the model package that exports it."""
    if transformers.__version__ != TRANSFORMERS_VERSION:
        raise ForkViewError(
            f"the fork view is made against transformers {TRANSFORMERS_VERSION}, "
            f"but transformers {transformers.__version__} is installed"
        )
    modules = inlined_modules()
    diffs = {}
    for stock, aligned in ALIGNED_CLASSES.items():
        module_name = stock.__module__
        package = module_name.rsplit(".", 1)[0]
        upstream = _source_of(module_name)
        section = fork_section(upstream, package, _repo_path(module_name), inspect.getsource(aligned), modules)
        patched = upstream + "\n\n" + section
        diffs[module_name.rsplit(".", 1)[1] + ".py.diff"] = _checked_diff(upstream, patched, _repo_path(module_name))
        init = _source_of(package)
        exported = add_export(init, stock.__name__, aligned.__name__)
        init_path = _repo_path(package + ".__init__")
        diffs[package.rsplit(".", 1)[1] + "__init__.py.diff"] = _checked_diff(init, exported, init_path)
    return diffs


def _checked_diff(old, new, repo_path):
    diff = unified_diff(old, new, repo_path)
    if apply_unified_diff(old, diff) != new:
        raise AssertionError(f"the diff of {repo_path} does not reproduce the patched file")
    return diff


def write_fork_view(output_dir):
    """Write the diffs into ``output_dir``, removing ``*.diff`` files that are no longer generated."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    diffs = fork_view()
    for stale in output_dir.glob("*.diff"):
        if stale.name not in diffs:
            stale.unlink()
    for name, diff in diffs.items():
        (output_dir / name).write_text(diff, encoding="utf-8")
    return sorted(diffs)


def stale_files(output_dir):
    """Names of the diffs in ``output_dir`` that are missing, different or no longer generated."""
    output_dir = Path(output_dir)
    diffs = fork_view()
    committed = {p.name: p.read_text(encoding="utf-8") for p in output_dir.glob("*.diff")}
    return sorted(name for name in set(diffs) | set(committed) if diffs.get(name) != committed.get(name))


HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def diff_target(diff):
    """The ``b/`` path that a single-file unified diff writes, without the ``b/``."""
    for line in diff.splitlines():
        if line.startswith("+++ "):
            return line[4:].split("\t")[0].removeprefix("b/")
    raise ForkViewError("not a unified diff: no '+++' line")


def apply_unified_diff(original, diff):
    """``original`` with a single-file unified diff applied exactly (no fuzz, no offsets), as ``patch -p1`` would."""
    old = original.splitlines(keepends=True)
    new, cursor = [], 0
    lines = diff.splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if line.startswith("+++ ")) + 1
    while i < len(lines):
        match = HUNK.match(lines[i])
        if not match:
            raise ForkViewError(f"diff line {i + 1}: expected a hunk header, got {lines[i]!r}")
        start = int(match.group(1)) - (0 if match.group(2) == "0" else 1)
        new += old[cursor:start]
        cursor = start
        i += 1
        while i < len(lines) and not lines[i].startswith("@@"):
            tag, text = lines[i][0], lines[i][1:]
            if tag not in " -+":
                raise ForkViewError(f"diff line {i + 1}: unsupported line {lines[i]!r}")
            if tag in " -":
                if cursor >= len(old) or old[cursor] != text:
                    raise ForkViewError(f"diff line {i + 1} does not match line {cursor + 1} of the file")
                cursor += 1
            if tag in " +":
                new.append(text)
            i += 1
    return "".join(new + old[cursor:])
