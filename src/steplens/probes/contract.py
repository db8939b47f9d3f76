"""The probe contract: what an experiment of the study declares, so that the CLI, `steplens report` and
`steplens study` can run it, index it and judge the study's claims on it without knowing it.

Everything outside `steplens.probes` talks to a probe through `Probe` below and the registry
(`steplens.probes.registry`: `get_probe`, `probe_names`, `probes`); none of it names a probe.

Writing a probe
---------------
Copy the smallest of steplens's own, `steplens/probes/sweep.py` (its options, conditions, a batch run through
`condition_runner`, a summary, a plot, two claims, a study part; `TinyPlugin` in tests/probes/test_probes.py is a whole
plug-in in 25 lines), and inherit `steplens.probes.base.ProbeBase`: it holds the skeleton every probe shares
(`run`: samples, the results store, the resumable loop `steplens.experiments.grid.run_grid`, results.json and
<name>.csv), so your file holds only what is its own. A probe is an object with:

- ``name`` (str): the registry name (``steplens probe NAME``, the study part, the folder's kind).
  ``description`` (str): one line, for help and reports. ``kind`` (str): how `steplens report` lists its runs
  (default ``probe NAME``).
- ``default_task() -> str``: the task generated when none is named (default: ``steplens.tasks.DEFAULT_TASK``).
- ``run(model, out, settings, progress=True, **options) -> dict``: the whole experiment into the folder
  ``out`` (resumable, growable with a larger count); returns the summary (below). ``settings`` is a
  `steplens.experiments.grid.ExperimentSettings`; ``options`` are the probe's own keywords. `ProbeBase.run` calls,
  in order:

  - ``options(model, settings, **given) -> dict``: check the probe's own options and fill their defaults,
    before any sample is made (raise ``ValueError`` naming the value and what is allowed);
  - ``prepare(run)``: checks that need the samples (``run`` is a `ProbeRun`: model, out, settings, options,
    samples, and ``state``, a dict for what the later steps share);
  - ``conditions(run) -> {condition name: spec}`` (for the given settings): one store row per (condition,
    sample); the spec is the probe's own (hooks to build, steps, frames), or None;
  - ``config(run) -> dict``: what the folder records beyond the settings (default: the options);
  - ``batch(run) -> fn(conditions, samples) -> {condition: [row per sample]}``: the batch run handed to
    ``run_grid`` (rows hold ``success`` and ``score`` and whatever else the probe measures;
    `steplens.probes.base.condition_runner` makes one where each condition is one sampling run with its hooks),
    with ``group(run, condition)`` (conditions of one group share a batch run; default: each its own);
  - ``summary(run, rows_by_condition) -> {"table": [row, ...], "headline": {...}, ...}``: what ``run``
    returns and results.json holds;
  - ``write(run, summary)`` (default: results.json and <name>.csv) and ``finish(run, summary, rows)``: plots
    and other files.
- ``reads(data) -> bool``: whether a results.json (parsed) is this probe's (default: ``data["probe"] == name``).
- ``claims`` (tuple of `Claim`): the study's claims the probe tests, each with its rule as code and as text.
- ``headline_text(headline, table) -> str``: its line in `steplens report`'s index.
- ``report_section(rep, out, summary, rel=".")``: its section of a `steplens.reports.page.Report`.
- ``study`` (`StudyPart` or None): how it takes part in `steplens study` (None: it does not, as a part of its
  own).

Registering
-----------
Another package adds a probe through an entry point, in its pyproject.toml::

    [project.entry-points."steplens.probes"]
    my-probe = "my_pkg.probes:PROBE"      # a probe object (or its class, made with no arguments)

steplens registers its own the same way. A new probe is one file plus that line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

# The states a claim's rule returns: it holds, it does not, or this run cannot test it (the claim is left out).
HOLDS, DOES_NOT_HOLD, NOT_TESTED = True, False, None
STATES = (HOLDS, DOES_NOT_HOLD, NOT_TESTED)
# A verdict's third state: the run tests the claim but lacks the evidence its rule needs (`Claim.needs` says why).
UNDETERMINED = "undetermined"
WORDS = {HOLDS: "holds", DOES_NOT_HOLD: "does not hold", UNDETERMINED: "undetermined"}


def state_word(state) -> str:
    """"holds", "does not hold" or "undetermined" for a verdict's state."""
    return WORDS[state if state == UNDETERMINED else bool(state)]


@dataclass(frozen=True)
class Claim:
    """One of the study's claims, judged on a probe's result by a stated rule, on stated evidence.

    ``rule(headline, table)`` returns one of `STATES`; ``evidence(headline, table)`` says what was measured (the
    index adds ``(rule: <rule_text>)``). ``needs_text`` states the evidence the rule needs (e.g. a clean solve rate
    whose 95% interval excludes 0) and ``needs(headline, table)`` checks it on the result: None when it is there,
    else why it is missing; the verdict is then `UNDETERMINED`, whatever the rule says."""

    id: str
    text: str
    rule: Callable[[dict, list], bool | None]
    rule_text: str
    evidence: Callable[[dict, list], str]
    needs: Callable[[dict, list], str | None] = field(default=lambda h, t: None)
    needs_text: str = ""

    def judge(self, headline: dict, table: list) -> tuple[bool | str, str] | None:
        """(state, evidence with the rule): state True (holds), False (does not hold) or `UNDETERMINED` (the evidence
        is missing; the text starts with why), or None when this result cannot test the claim."""
        holds = self.rule(headline, table)
        if holds is NOT_TESTED:
            return None
        text = f"{self.evidence(headline, table)} (rule: {self.rule_text})"
        if self.needs_text:
            text += f" (needs: {self.needs_text})"
        why = self.needs(headline, table)
        if why:
            return UNDETERMINED, f"undetermined: {why}; {text}"
        return bool(holds), text


def rate_excludes_floor(row: dict | None, what: str = "clean solve rate") -> str | None:
    """None when a table row's solve rate has a 95% interval above 0, else why not (a claim's ``needs``)."""
    if not row or not row.get("n"):
        return f"no {what} measured"
    if (row.get("ci_low") or 0.0) > 0:
        return None
    return (f"{what} {row.get('solved', 0)}/{row['n']} (95% interval {row.get('ci_low') or 0.0:.3f}–"
            f"{row.get('ci_high') or 0.0:.3f}) does not exclude 0")


@dataclass(frozen=True)
class StudyPart:
    """How a probe takes part in `steplens study`.

    - ``count``: the `steplens.experiments.study.StudyConfig` field giving its samples (``probe_count``, ``sweep_count``,
      ``compare_count``, ``count``);
    - ``order``: its place among the parts (they run and are listed in this order);
    - ``scope``: ``family`` (every family, in OUT/<family>/<name>/) or ``weakest`` (the ``compare_families``
      families where one seed is weakest, measured by the study's solve part, in OUT/<name>/<family>/);
    - ``options(cfg) -> dict``: the probe's run options from the study's config;
    - ``summary(result) -> JSON-able``: what study.json keeps of it per family (None: nothing beyond its folder);
    - ``not_applicable(task) -> str | None``: why it cannot run on a task family (None: it can)."""

    count: str
    order: int = 100
    scope: str = "family"
    options: Callable[[Any], dict] = field(default=lambda cfg: {})
    summary: Callable[[dict], Any] | None = None
    not_applicable: Callable[[Any], str | None] = field(default=lambda task: None)

    def __post_init__(self):
        if self.scope not in ("family", "weakest"):
            raise ValueError(f"study part scope {self.scope!r}; allowed: family, weakest")


@dataclass
class ProbeRun:
    """One run of a probe, as `ProbeBase.run` hands it from step to step."""

    model: Any
    out: Path
    settings: Any
    options: dict
    samples: list = field(default_factory=list)
    conditions: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)


@runtime_checkable
class Probe(Protocol):
    """The probe contract (see the module docstring for what each member means)."""

    name: str
    description: str
    kind: str
    claims: tuple
    study: StudyPart | None

    def default_task(self) -> str: ...

    def run(self, model, out: Path, settings, progress: bool = True, **options) -> dict: ...

    def options(self, model, settings, **given) -> dict: ...

    def conditions(self, run: ProbeRun) -> dict: ...

    def batch(self, run: ProbeRun) -> Callable: ...

    def summary(self, run: ProbeRun, rows: dict[str, list[dict]]) -> dict: ...

    def reads(self, data: dict) -> bool: ...

    def headline_text(self, headline: dict, table: list) -> str: ...

    def report_section(self, rep, out: Path, res: dict, rel: str = ".") -> None: ...


MEMBERS = ("name", "description", "kind", "claims", "study", "default_task", "run", "options", "conditions", "batch",
           "summary", "reads", "headline_text", "report_section")


def check_probe(probe, where: str = "") -> None:
    """Refuse, with the missing members named, an object that does not implement the probe contract."""
    missing = [m for m in MEMBERS if not hasattr(probe, m)]
    if missing or not isinstance(probe, Probe):
        raise TypeError(f"{where or type(probe).__name__} does not implement the steplens probe contract "
                        f"(steplens.probes.contract.Probe): missing {', '.join(missing)}")
    bad = [c for c in probe.claims if not isinstance(c, Claim)]
    if bad:
        raise TypeError(f"{where or probe.name}: claims must be steplens.probes.contract.Claim objects, got {bad[0]!r}")
