"""The package layout: the import graph of steplens (function-level imports counted) has no cycle in the backend
layer; of its three kinds of modules, the core imports no adapter and no tiny test builder, an adapter imports no other
adapter and no tiny builder, a tiny builder only the core and its own adapter; nothing outside steplens.backends
names a pipeline class."""

import ast
import re
from pathlib import Path

import pytest

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


CORE = {"__init__", "checks", "decode", "geometry", "load", "lora", "loop", "model", "patches", "prefix", "prompts",
        "registry", "steps"}
TINY = "tiny"  # steplens/backends/tiny/<family>.py (a one-file adapter's builder), or <family>/tiny.py in a folder


def adapters() -> list[str]:
    """The backend adapters: every package or module in steplens/backends/ that is neither the shared core nor the
    folder of tiny builders."""
    return sorted(f"steplens.backends.{p.stem}" for p in BACKENDS.iterdir()
                  if p.stem not in CORE | {TINY}
                  and ((p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"))


def tiny_builders() -> dict[str, str | None]:
    """{tiny test builder: the adapter it builds for (None: none of that name)}: the modules of backends/tiny/ and
    each adapter's `tiny` module."""
    names, out = adapters(), {}
    for m in modules():
        parts = m.split(".")
        if m.startswith("steplens.backends.tiny"):
            own = f"steplens.backends.{parts[3]}" if len(parts) > 3 else None
            out[m] = own if own in names else None
        elif len(parts) > 3 and parts[-1] == TINY and ".".join(parts[:3]) in names:
            out[m] = ".".join(parts[:3])
    return out


def kind(m: str) -> tuple[str, str | None]:
    """("core" | "adapter" | "tiny", the adapter it belongs to) of a module of steplens.backends; ("", None) outside."""
    tiny = tiny_builders()
    if m in tiny:
        return "tiny", tiny[m]
    own = next((a for a in adapters() if m == a or m.startswith(a + ".")), None)
    if own is not None:
        return "adapter", own
    return ("core", None) if m == "steplens.backends" or m.startswith("steplens.backends.") else ("", None)


def test_the_walk_sees_function_level_imports():
    g = graph()
    assert "steplens.backends" in g["steplens.models.load"]  # imported inside load_model
    assert "steplens.backends.registry" in g["steplens.backends.steps"]  # imported inside trace_pipeline
    assert {"steplens.backends.wan", "steplens.backends.ltx2"} <= set(adapters())


def test_tiny_builders_are_their_own_category():
    names, tiny = adapters(), tiny_builders()
    assert "steplens.backends.hunyuan15" in names and "steplens.backends.tiny" not in names
    assert {"steplens.backends.wan.tiny": "steplens.backends.wan", "steplens.backends.ltx2.tiny":
            "steplens.backends.ltx2", "steplens.backends.tiny.hunyuan15": "steplens.backends.hunyuan15"}.items() \
        <= tiny.items()
    assert kind("steplens.backends.wan.tiny") == ("tiny", "steplens.backends.wan")
    assert kind("steplens.backends.wan.loop") == ("adapter", "steplens.backends.wan")
    assert kind("steplens.backends.loop") == ("core", None) and kind("steplens.hooks") == ("", None)


def test_no_import_cycle_in_the_backends():
    assert cycles(graph(), "steplens.backends") == []


def test_no_adapter_imports_another_or_a_tiny_builder():
    offenders = []
    for m, deps in graph().items():
        what, own = kind(m)
        if what != "adapter":
            continue
        bad = sorted(d for d in deps if kind(d)[0] == "tiny" or (kind(d)[0] == "adapter" and kind(d)[1] != own))
        if bad:
            offenders.append(f"{m}: {bad}")
    assert not offenders, offenders


def test_a_tiny_builder_imports_only_the_core_and_its_own_adapter():
    offenders = []
    for m, deps in graph().items():
        what, own = kind(m)
        if what != "tiny":
            continue
        bad = sorted(d for d in deps if kind(d)[0] == "tiny" and d != m or (kind(d)[0] == "adapter"
                                                                            and kind(d)[1] != own))
        if bad:
            offenders.append(f"{m}: {bad}")
    assert not offenders, offenders


def test_the_core_imports_no_adapter_and_no_tiny_builder():
    g = graph()
    offenders = {m: sorted(d for d in g[m] if kind(d)[0] in ("adapter", "tiny")) for m in g if kind(m)[0] == "core"}
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


# The layers of ARCHITECTURE.md, bottom up: a module imports only its own layer and the layers below it.
LAYERS = {"io": 0, "regions": 0, "tasks": 1,
          "context": 2, "sampling": 2, "contract": 2, "tape": 2, "hooks": 2, "presets": 2, "cos": 2, "trace": 2,
          "models": 3, "backends": 3,
          "experiments": 4, "reports": 4,
          "methods": 5, "training": 5,
          "probes": 6,
          "orchestrators": 7,
          "cli": 8}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_layer():
    assert not [m for m in modules() if m != "steplens" and layer(m) is None]


def test_layers_import_only_their_own_layer_and_those_below():
    g = graph()
    up = sorted(f"{m} -> {t}" for m, ts in g.items() for t in ts
                if layer(m) is not None and layer(t) is not None and layer(t) > layer(m))
    assert not up, up
    # the walk sees real imports across layers (the CLI imports the experiments)
    assert any(layer(t) == 4 for t in g["steplens.cli.cmd_probe"])


def test_no_import_cycle_in_the_package():
    """Package-wide (function-level imports counted): no module imports itself back through others."""
    assert cycles(graph()) == []


def folder(module: str) -> str | None:
    """The folder (or top-level module) of steplens a module lives in: steplens.probes.energy -> probes."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def folder_graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, deps in graph().items():
        if folder(m) is not None:
            out.setdefault(folder(m), set()).update(folder(d) for d in deps if folder(d) not in (None, folder(m)))
    return out


def test_the_folder_graph_sees_imports_between_folders():
    g = folder_graph()
    assert "experiments" in g["cli"] and "backends" in g["models"] and "io" in g["tasks"]
    assert cycles({"x.a": {"x.b"}, "x.b": {"x.a"}}, "x") == [["x.a", "x.b"]]


def test_folders_import_each_other_only_downward():
    """Folders are the layers: no two folders import each other, directly or round a circle."""
    g = folder_graph()
    assert cycles({f"x.{a}": {f"x.{b}" for b in bs} for a, bs in g.items()}, "x") == []


# ARCHITECTURE.md: every path it names exists, and its layer diagram is the LAYERS above
ROOT = SRC.parent.parent
ARCHITECTURE = ROOT / "ARCHITECTURE.md"


def named_paths(text: str) -> list[str]:
    """The paths ARCHITECTURE.md names in backticks (a folder `x/`, a file `x.py` / `a/b.py`, `<family>` a
    placeholder) and in its layer diagram (every `name/` and `name.py`)."""
    quoted = [q for q in re.findall(r"`([^`\s]+)`", text) if q.endswith(("/", ".py"))]
    block = text.split("```")[1]
    return quoted + re.findall(r"(?<![\w/.])([a-z0-9_]+/|[a-z0-9_]+\.py)(?![\w/])", block)


def exists(path: str) -> bool:
    """A named path is the repository's (tests/..., docs/...) or the package's (relative to src/steplens, or a bare
    folder or file name anywhere in it; a bare test_*.py anywhere in tests/); `<...>` matches any name."""
    pattern = re.sub(r"<[^>]+>", "*", path.rstrip("/"))
    if pattern in ("src",):
        return (ROOT / pattern).is_dir()
    bases = [ROOT] if pattern.split("/")[0] in ("tests", "docs") else [SRC]
    hits = [p for base in bases for p in base.glob(pattern)]
    if not hits and "/" not in pattern:  # a bare name: a test file in tests/, anything else in the package
        hits = list((ROOT / "tests" if pattern.startswith("test_") else SRC).rglob(pattern))
    return any(p.is_dir() == path.endswith("/") for p in hits)


def test_every_path_architecture_names_exists():
    names = named_paths(ARCHITECTURE.read_text())
    assert {"tests/test_layout.py", "cli/", "regions.py", "backends/tiny/<family>.py"} <= set(names)
    assert not [n for n in names if not exists(n)]
    assert not exists("tests/nowhere.py") and not exists("nowhere/") and not exists("cli.py")
    assert exists("test_<family>_own.py") and not exists("test_<family>_nowhere.py")


def test_the_layer_diagram_is_the_layers_checked_here():
    """Each folder or module that starts a column of ARCHITECTURE.md's diagram sits in the layer the diagram gives it,
    and every layer of LAYERS is drawn."""
    drawn, level = {}, None
    for line in ARCHITECTURE.read_text().split("```")[1].splitlines():
        if re.match(r"\d\s", line):
            level = int(line[0])
        for name in re.findall(r"(?:^\d|^|\s{2})\s*([a-z0-9_]+)(?:/|\.py)(?=\s|$)", line):
            drawn[name] = level
    assert drawn == LAYERS


def test_each_backend_family_is_a_short_subclass_of_the_shared_tests():
    """Every family declared in tests/backends/families.py runs the shared backend tests (backend_mixin) from a test
    file of at most 50 lines: what families share is written once, in the mixin."""
    backends = ROOT / "tests" / "backends"
    declared = re.findall(r"^class (\w+)\((?!object)\w+\):(?:(?!^class ).)*?def build\(", (backends / "families.py")
                          .read_text(), re.M | re.S)
    runs = {}
    for path in backends.glob("test_*.py"):
        for cls, family in re.findall(r"^class (\w+)\(BackendTests\):\s+family = (\w+)\(\)", path.read_text(), re.M):
            runs[family] = path
    assert {"Hunyuan15", "LTX2", "Wan22", "WanTI2V"} <= set(declared)
    assert sorted(runs) == sorted(declared)
    long = {p.name: n for p in runs.values() if (n := len(p.read_text().splitlines())) > 50}
    assert not long, long


# -- family names (issue 33 item 1): the core asks an adapter, never names a family -----------------------------------
FAMILY = re.compile(r"(?i)(?<![a-z])(wan|ltx|hunyuan)(?![a-z])")  # Wan2.2, wan:, LTX-2, ltx2, hunyuan15; not "want"
FAMILY_CAMEL = re.compile(r"(Wan|LTX|Ltx|Hunyuan)(?=[A-Z0-9_]|$)")  # WanPipelineModel, LTX2Loop
STUDY_MODEL = "VBVR-Wan2.2"  # the study's model, named as its paper names it (a citation, not a family decision)
FAMILY_HOMES = ("backends/wan/", "backends/ltx2/", "backends/hunyuan15.py", "backends/tiny/")
# the one place outside the adapters that must spell them: the built-in entry points, a fallback copy of
# pyproject.toml's [project.entry-points."steplens.backends"] for an install whose metadata predates them
FAMILY_ALLOWED = {("backends/registry.py", "BUILTIN")}


def family_names(source: str) -> list[tuple[int, str]]:
    """(line, text) of each family name in code: an identifier holding one, or a string literal that is not a
    docstring (comments and docstrings may name families)."""
    import io
    import tokenize

    docs = {n.value.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Expr)
            and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
    strings = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    out = []
    for t in tokenize.generate_tokens(io.StringIO(source).readline):
        if t.type == tokenize.NAME and (FAMILY.search(t.string.replace("_", " ")) or FAMILY_CAMEL.search(t.string)):
            out.append((t.start[0], t.string))
        elif t.type in strings and t.start[0] not in docs and FAMILY.search(t.string.replace(STUDY_MODEL, "")):
            out.append((t.start[0], t.string))
    return out


def _assigned_in(source: str, line: int) -> str | None:
    """The module-level name whose assignment spans `line` (for the allowlist)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and node.lineno <= line <= node.end_lineno:
            return next((t.id for t in node.targets if isinstance(t, ast.Name)), None)
    return None


def test_the_family_name_check_sees_identifiers_and_strings_not_docstrings():
    src = ('"""Runs on Wan2.2 and LTX-2."""\n# hunyuan here is fine\nx = WanPipelineModel\nif m.backend != "wan":\n'
           '    pass\nmsg = f"an LTX-2 pipeline"\nwant = "wanted: a swan"\ncite = "VBVR-Wan2.2 scores 0.685"\n'
           'ltx2_shape = 1\n')
    assert [line for line, _ in family_names(src)] == [3, 4, 6, 9]


def test_no_family_name_outside_its_adapter_and_tiny_builder():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(FAMILY_HOMES):
            continue
        source = path.read_text()
        found += [f"{rel}:{line}: {text[:60]}" for line, text in family_names(source)
                  if (rel, _assigned_in(source, line)) not in FAMILY_ALLOWED]
    assert not found, "\n".join(found)


def test_models_keep_no_sampling_state():
    """configure_sampling (a model's sampling set for the rest of its life) is gone: a Sampling goes with each call."""
    found = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"configure_sampling|\bset_sigmas\b|\b_sigmas\b", line)]
    assert not found, found
