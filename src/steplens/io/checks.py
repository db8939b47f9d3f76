"""Every command's inputs checked in one place, before any work and any write.

Each check raises ValueError naming the option (or file, or field), the bad value and what is allowed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .files import temp_file

MAX_STEPS = 10_000  # more sampling steps than any published schedule uses; guards against --steps 1e12
MAX_GUIDANCE = 100.0  # far beyond any published CFG scale (Wan 5, LTX-2 3-4, up to ~20): --guidance 1e30 overflows
# particles (or seeds) of one sample run side by side: far beyond published test-time search (best-of-n at 64-256);
# a search budget is counted in plain runs, so it is bounded alike. --particles 1e8 would never finish (or fit)
MAX_PARTICLES = 1024
# generated samples of one run: 200x the study's 500; --count 1e9 would spend hours making samples before any work
MAX_COUNT = 100_000
VALUE_CHARS = 120  # a quoted value longer than this is shortened in a message (head ... tail, its length said)
MESSAGE_CHARS = 2000  # a whole message longer than this keeps its start and end


def _elide(text: str, keep: int) -> str:
    head, tail = text[: keep * 2 // 3], text[-(keep // 3):]
    return f"{head} ... [{len(text):,} characters] ... {tail}"


def shorten(message: str, value_chars: int = VALUE_CHARS, message_chars: int = MESSAGE_CHARS) -> str:
    """A message longer than `message_chars` with each long quoted value ('...' or "...", as repr writes it)
    shortened to its start and end with its length said, and the whole capped at `message_chars`: what every error
    message passes through (a 60,000-word prompt is not echoed whole). Shorter messages are returned as they are."""
    import re

    if len(message) <= message_chars:  # a message of ordinary length is left as written
        return message
    quoted = re.compile("'[^']{%d,}'|\"[^\"]{%d,}\"" % (value_chars, value_chars))
    message = quoted.sub(lambda m: m.group(0)[0] + _elide(m.group(0)[1:-1], value_chars) + m.group(0)[-1], message)
    return message if len(message) <= message_chars else _elide(message, message_chars)


def bounded(option: str, value, maximum: int, what: str) -> None:
    """A count that work is made of (samples, particles, budgets) at most `maximum`, refused before any work."""
    if value is not None and not isinstance(value, bool) and isinstance(value, int) and value > maximum:
        raise ValueError(f"{option} {value}: at most {maximum} {what}; split the work into several runs")


def number(option: str, value, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           integer: bool = False):
    """A finite number within [lo, hi] (or (lo, hi] with lo_open)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise ValueError(f"{option} {value!r}: expected {'an integer' if integer else 'a number'}")
    if not math.isfinite(value):
        raise ValueError(f"{option} {value!r}: must be a finite number")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ValueError(f"{option} {value!r}: must be {'>' if lo_open else '>='} {lo:g}"
                         + (f" and <= {hi:g}" if hi is not None else ""))
    if hi is not None and value > hi:
        raise ValueError(f"{option} {value!r}: must be <= {hi:g}" + (f" and >= {lo:g}" if lo is not None else ""))
    return value


def sampling(steps: int | None = None, shift: float | None = None, guidance: float | None = None) -> None:
    """The sampler's settings: 1 <= steps <= MAX_STEPS, shift a finite number > 0, 0 <= guidance <= MAX_GUIDANCE."""
    number("--steps", steps, 1, MAX_STEPS, integer=True)
    number("--shift", shift, 0, None, lo_open=True)
    number("--guidance", guidance, 0, MAX_GUIDANCE)


def sigma_list(value, option: str = "--sigmas") -> list[float] | None:
    """An explicit σ list ('1,0.9,0.75,0.5' or numbers) -> the σ of each step as floats: each in (0, 1], strictly
    decreasing; a final 0 (where the last step lands) may be given or left out, and is dropped."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if not value.strip() or any(not p for p in parts):
            raise ValueError(f"{option} {value!r}: expected numbers separated by commas, e.g. 1,0.9375,0.8333,0.625")
        items = []
        for p in parts:
            try:
                items.append(float(p))
            except ValueError:
                raise ValueError(f"{option} {value!r}: {p!r} is not a number; expected numbers separated by commas, "
                                 f"e.g. 1,0.9375,0.8333,0.625") from None
    else:
        try:
            items = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ValueError(f"{option} {value!r}: expected a list of numbers") from None
    if len(items) > 1 and items[-1] == 0:
        items = items[:-1]  # the implied end of the last step
    if not items:
        raise ValueError(f"{option} {value!r}: give at least one σ in (0, 1] (the final 0 is implied)")
    for i, s in enumerate(items):
        if not math.isfinite(s) or not 0 < s <= 1:
            raise ValueError(f"{option}: σ {s:g} (item {i + 1} of {value!r}) is not in (0, 1]; each σ of a step "
                             f"must be > 0 and <= 1 (a final 0 may end the list)")
        if i and s >= items[i - 1]:
            raise ValueError(f"{option}: σ {s:g} (item {i + 1} of {value!r}) does not come below the σ before it "
                             f"({items[i - 1]:g}); the list must be strictly decreasing")
    if len(items) > MAX_STEPS:
        raise ValueError(f"{option}: {len(items)} σ values: must be <= {MAX_STEPS} steps")
    return items


def device(name: str) -> str:
    """A torch device this machine has: cpu, cuda[:i] with a GPU, mps on Apple silicon."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r}: not a torch device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name!r}: this machine has no CUDA GPU (torch {torch.__version__}); use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"--device {name!r}: MPS is not available here; use cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name!r}: steplens runs on cpu, cuda or mps")
    return name


def _probe_write(folder: Path, option: str) -> None:
    try:
        fd, tmp = temp_file(folder, "steplens-write-check")  # a killed process's is cleaned as any temp
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise ValueError(f"{option} {folder}: cannot write there ({e.strerror or e})") from None


def out_dir(path: Path | None, option: str = "--out") -> Path | None:
    """An output folder that exists or can be made, and is writable (probed with a temporary file)."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, so no folder can be made under it")
    _probe_write(existing, option)
    return path


def out_file(path: Path | None, option: str = "--out", suffix: str | None = None) -> Path | None:
    """An output file whose folder is writable (made if missing), not a folder itself."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file path" + (f" ending in {suffix}" if suffix else ""))
    if suffix and path.suffix != suffix:
        raise ValueError(f"{option} {path}: expected a {suffix} file")
    out_dir(path.parent, option)
    return path


def in_file(path: Path | None, option: str) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{option} {path}: file not found")
    if not path.is_file():
        raise ValueError(f"{option} {path}: is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{option} {path}: not readable (permission denied)")
    return path


def threads(n: int | None) -> int | None:
    return number("--threads", n, 1, 1024, integer=True)
