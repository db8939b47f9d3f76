"""The package layout: the import graph of steplens (function-level imports counted) has no cycle in the backend
layer, no backend adapter imports another, and nothing outside steplens.backends names a pipeline class."""

import ast
import re
from pathlib import Path

import steplens

SRC = Path(steplens.__file__).parent
BACKENDS = SRC / "backends"
PIPELINE_CLASS = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:ImageToVideo|TextToVideo|Video|I2V)?Pipeline\b")
GENERIC = {"DiffusionPipeline"}  # diffusers' base class: loading any folder, not a family


def module_name(path: Path) -> str:
    parts = ("steplens",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The steplens modules a file imports anywhere in it (inside functions too), relative imports resolved;
    `from pkg import module` counts as importing pkg.module (as import-linter and pydeps count it), not pkg."""
    pkg = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known]
            names = subs if len(subs) == len(node.names) else [mod] + subs  # `from pkg import module`: the module
        else:
            continue
        for n in names:
            while n and n not in known:  # a name inside a module: the module
                n = n.rpartition(".")[0]
            if n:
                out.add(n)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports(p, known) - {m} for m, p in mods.items()}


def cycles(g: dict[str, set[str]], within: str = "steplens") -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), among modules under `within`."""
    nodes = [m for m in g if m == within or m.startswith(within + ".")]
    edges = {m: [n for n in g[m] if n in nodes] for m in nodes}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def adapters() -> list[str]:
    """The backend adapters: every package or module in steplens/backends/ that is not the shared core."""
    core = {"__init__", "checks", "geometry", "load", "lora", "loop", "model", "patches", "prompts", "registry",
            "steps"}
    return sorted(f"steplens.backends.{p.stem}" for p in BACKENDS.iterdir()
                  if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem not in core))


def test_the_walk_sees_function_level_imports():
    g = graph()
    assert "steplens.backends" in g["steplens.models.load"]  # imported inside load_model
    assert "steplens.backends.registry" in g["steplens.backends.steps"]  # imported inside trace_pipeline
    assert {"steplens.backends.wan", "steplens.backends.ltx2"} <= set(adapters())


def test_no_import_cycle_in_the_backends():
    assert cycles(graph(), "steplens.backends") == []


def test_no_adapter_imports_another():
    g, names = graph(), adapters()
    offenders = []
    for m, deps in g.items():
        own = next((a for a in names if m == a or m.startswith(a + ".")), None)
        if own is None:
            continue
        bad = sorted(d for d in deps if any(d == a or d.startswith(a + ".") for a in names if a != own))
        if bad:
            offenders.append(f"{m}: {bad}")
    assert not offenders, offenders


def test_the_core_imports_no_adapter():
    g, names = graph(), adapters()
    core = [m for m in g if m.startswith("steplens.backends") and not any(m == a or m.startswith(a + ".")
                                                                          for a in names)]
    offenders = {m: sorted(d for d in g[m] if any(d == a or d.startswith(a + ".") for a in names)) for m in core}
    assert not {m: d for m, d in offenders.items() if d}


def test_nothing_outside_the_backends_names_a_pipeline_class():
    offenders = []
    for path in SRC.rglob("*.py"):
        if BACKENDS in path.parents:
            continue
        found = set(PIPELINE_CLASS.findall(path.read_text())) - GENERIC
        if found:
            offenders.append(f"{path.relative_to(SRC)}: {sorted(found)}")
    assert not offenders, offenders


def test_cycles_elsewhere_are_reported():
    """Not an assertion on the rest of the package (other layers own those), but the finder works."""
    assert cycles({"a.x": {"a.y"}, "a.y": {"a.x"}, "a.z": set()}, "a") == [["a.x", "a.y"]]
