"""The house: rooms that import only what they need, and no import cycle among the package's modules."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from ray_diffnas.bench.table import load_table
from ray_diffnas.spaces.nb201 import NB201Space

PACKAGE = Path(__file__).resolve().parents[1] / "ray_diffnas"


def _run(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip()


def test_importing_the_spaces_imports_no_torch_geometric() -> None:
    out = _run("""
        import sys
        import ray_diffnas.spaces
        from ray_diffnas import UNetSpace, NB201Space
        import numpy as np
        arch = UNetSpace(image_size=16).sample(np.random.default_rng(0))
        cell = NB201Space().sample(np.random.default_rng(0))
        UNetSpace(image_size=16).param_space(dataset="digits")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch_geometric", "torch")))
    """)
    assert out == "[]"


def test_the_command_parser_and_its_checks_import_neither_ray_nor_torch() -> None:
    out = _run("""
        import sys
        from ray_diffnas.app.cli import build_parser
        from ray_diffnas.app.options import SearchOptions
        build_parser().parse_args(["search", "--dataset", "digits"])
        SearchOptions(dataset="digits").check()
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "torch")))
    """)
    assert out == "[]"


def test_a_table_trial_imports_no_torch(tmp_path: Path) -> None:
    """What a Tune worker of a table trial does: unpickle the lookup, import the trainable (and Tune),
    answer queries, also one that makes it rebuild the space."""
    cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    lookup = load_table(pd.DataFrame({"arch": [cell], "acc": [90.5]}), NB201Space()).lookup()
    (tmp_path / "lookup.pkl").write_bytes(pickle.dumps(lookup))
    out = _run(f"""
        import pickle, sys
        from ray import tune
        from ray_diffnas.bench.table_trainable import lookup_trainable
        lookup = pickle.loads(open({str(tmp_path / "lookup.pkl")!r}, "rb").read())
        by_alias = lookup.query({{"arch": {{"ops": ["nor_conv_3x3", "none", "skip_connect", "skip_connect", "none",
                                            "avg_pool_3x3"]}}}})
        by_space = lookup.query({{"arch": {cell!r}}})  # a string: not an alias, validated by the rebuilt space
        print(by_alias[1], by_space[1], "torch" in sys.modules)
    """)
    assert out == "{'acc': 90.5} {'acc': 90.5} False"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules a module imports, at any depth of its code except ``if TYPE_CHECKING:``.

    ``from package import module`` counts as importing the module (the package's ``__init__``, which
    Python runs first for any of its modules, is not counted as a dependency of its own modules)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
        for node in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ray_diffnas"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ray_diffnas"))
    return found


def test_no_import_cycle_among_the_package_modules() -> None:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _imports(path, set(modules)) if m in modules and m != name} for name, path in modules.items()
    }
    # A package's __init__ that re-exports its own modules is no cycle: importing a module runs its parents'
    # __init__ first, and those import nothing that imports back.
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert len(graph) > 40  # the walk saw the whole package


def test_the_rooms_are_folders() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"spaces", "model", "diffusion", "data", "metrics", "trainable", "searchers", "bench", "app"} <= rooms
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "atomic.py", "errors.py", "lazy.py", "text_table.py"], loose
