"""The package tree is the architecture: no import cycles, layers only import downwards,
and every package says in its docstring what it owns."""

from __future__ import annotations

import ast
import pathlib

import openclaw_failover

PKG = "openclaw_failover"
ROOT = pathlib.Path(openclaw_failover.__file__).parent

# Each package may import only packages on a lower layer (and itself).
LAYERS: list[set[str]] = [
    {"config"},
    {"core"},
    {"local"},
    {"primary", "notify", "monitor"},
    {"syncback"},
    {"engine"},
    {"ops", "sandbox"},
    {"cli"},
]


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """Every ocf module ``path`` imports, anywhere in it (TYPE_CHECKING and functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(PKG):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PKG))
    return found & known.keys()


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    edges = graph()
    cycles = []
    for start in edges:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start:
                    cycles.append(" -> ".join((*path, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles))[:20])


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    return None


def test_every_package_is_on_a_layer() -> None:
    tops = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert tops == set().union(*LAYERS)


def test_packages_import_only_downwards() -> None:
    wrong = []
    for module, targets in graph().items():
        mine = layer_of(module)
        if mine is None:  # openclaw_failover itself and __main__
            continue
        for target in targets:
            theirs = layer_of(target)
            same_package = target.split(".")[1:2] == module.split(".")[1:2]
            if theirs is not None and theirs > mine and not same_package:
                wrong.append(f"{module} imports {target}")
            if theirs == mine and not same_package:
                wrong.append(f"{module} imports {target} on its own layer")
    assert not wrong, "\n".join(sorted(wrong))


def test_every_package_says_what_it_owns() -> None:
    for init in ROOT.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"{init.relative_to(ROOT.parent)} needs a docstring"
