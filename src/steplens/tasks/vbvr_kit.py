"""What the VBVR scorers share about the evaluator packages they call: the two score modes, the evaluator's
identity (package version, SHA-256 of its source files) and the closest evaluator names to an unknown task.

VBVR-EvalKit (and VBVR-Pro-Bench, whose package has the same name, `vbvr_bench`) is never vendored: these helpers
only read the installed (or named) package.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
from pathlib import Path

# VBVR-EvalKit's two ways to score (its docs/En/SCORING.md): task-specific (the default now: the rubric's
# `task_specific` dimension alone) and full (the five dimensions weighted 0.15/0.35/0.15/0.10/0.25)
MODES = ("task-specific", "full")
DEFAULT_MODE = "task-specific"


def check_mode(mode: str | None, option: str = "--vbvr-score") -> str:
    """The score mode, named: task-specific (default) or full; anything else refused naming what is allowed."""
    if mode is None:
        return DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(f"{option} {mode!r}: unknown score mode; allowed: {', '.join(MODES)} (task-specific = "
                         f"VBVR-EvalKit's default, its task_specific dimension; full = its five-dimension weighted "
                         f"score, `--full-score`)")
    return mode


def source_files(folder: Path) -> list[Path]:
    """The package's Python source files, in a fixed order (caches excluded)."""
    return sorted(p for p in Path(folder).rglob("*.py") if "__pycache__" not in p.parts)


def source_sha256(folder: Path) -> tuple[str, int]:
    """SHA-256 over the package's source files (each one's path relative to the package and its bytes), and how
    many files it covers."""
    h = hashlib.sha256()
    files = source_files(folder)
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest(), len(files)


def package_version(module) -> str | None:
    """The installed distribution's version of a top-level package, else its __version__, else None."""
    from importlib import metadata

    name = module.__name__.split(".")[0]
    for dist in metadata.packages_distributions().get(name, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    top = __import__(name)
    return getattr(top, "__version__", None)


def identity(module, kit: str, folder: Path | None = None, package: str | None = None) -> dict:
    """Who scores: the evaluator kit, its package folder, version and source hash."""
    top = sys.modules[module.__name__.split(".")[0]]
    folder = Path(folder or Path(top.__file__).parent)
    sha, n = source_sha256(folder)
    return {"kit": kit, "package": package or top.__name__, "path": str(folder), "version": package_version(module),
            "sha256": sha, "files": n}


def load_isolated(folder: Path, package: str, option: str) -> tuple[object, Path]:
    """`<folder>/<package>/evaluators` imported under a private name, so that it sits beside an installed package of
    the same name (VBVR-Pro-Bench's and VBVR-EvalKit's are both `vbvr_bench` in some versions); (module, package
    folder). A folder without it is refused, naming what was looked for."""
    import importlib
    import importlib.machinery
    import importlib.util

    pkg = Path(folder) / package
    sha = hashlib.sha256(str(pkg.resolve()).encode()).hexdigest()[:12]
    alias = f"_steplens_{package}_{sha}"
    if alias + ".evaluators" in sys.modules:
        return sys.modules[alias + ".evaluators"], pkg
    init = pkg / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(alias, init, submodule_search_locations=[str(pkg)])
    else:  # a namespace package (no __init__.py)
        spec = importlib.machinery.ModuleSpec(alias, None, is_package=True)
        spec.submodule_search_locations = [str(pkg)]
    mod = importlib.util.module_from_spec(spec)
    sys.modules[alias] = mod
    try:
        if spec.loader is not None:
            spec.loader.exec_module(mod)
        return importlib.import_module(alias + ".evaluators"), pkg
    except Exception as e:
        for m in [m for m in sys.modules if m == alias or m.startswith(alias + ".")]:
            del sys.modules[m]
        raise ValueError(f"{option} {folder}: its {package}/evaluators does not import ({type(e).__name__}: {e}); "
                         f"install what it needs (numpy, opencv-python, ...) in this environment") from None


def closest(name: str, known) -> str:
    """The evaluator names closest to `name` (difflib), for a message."""
    near = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"closest: {', '.join(near)}" if near else f"none close to it (e.g. {', '.join(sorted(known)[:3])})"
