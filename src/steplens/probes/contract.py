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
    before any sample is made (raise ``ValueError`` naming the value and what is allowed). The CLI calls it first
    with ``model=None``, before the model loads (`steplens.probes.base.check_before_loading`; ``settings.steps``
    is then the given steps or None): check there all that needs no model, and leave what needs one (its blocks,
    its own steps) to the call with the model;
  - ``prepare(run)``: checks that need the samples (``run`` is a `ProbeRun`: model, out, settings, options,
    samples, and ``state``, a dict for what the later steps share);
  - ``conditions(run) -> {condition name: spec}`` (for the given settings): one store row per (condition,
    sample); the spec is the probe's own (hooks to build, steps, frames), or None. Name them through ``plan``
    (below) so that the plan and the run agree (`ProbeBase.run` refuses, before any work, a run whose plan names
    other stored conditions);
  - ``config(run) -> dict``: what the folder records beyond the settings (default: the options; where a key is a
    setting's name, the noise probe's ``steps``, the steps it noises, the setting is kept under ``settings`` too);
  - ``batch(run) -> fn(conditions, samples) -> {condition: [row per sample]}``: the batch run handed to
    ``run_grid`` (rows hold ``success`` and ``score`` and whatever else the probe measures;
    `steplens.probes.base.condition_runner` makes one where each condition is one sampling run with its hooks),
    with ``group(run, condition)`` (conditions of one group share a batch run; default: each its own);
  - ``summary(run, rows_by_condition) -> {"table": [row, ...], "headline": {...}, ...}``: what ``run``
    returns and results.json holds;
  - ``write(run, summary)`` (default: results.json and <name>.csv) and ``finish(run, summary, rows)``: plots
    and other files.
- ``plan(settings, shape, options) -> {condition name: Branch}``: the conditions and what each costs, from the
  settings alone, with no model (``steplens probe/compare/study --plan`` prints the bill before the model loads).
  A search or other run whose forwards are not steps x runs says them in ``forwards`` (per sample and CFG branch);
  one that may stop early (a chain) bounds them and says ``at_most``.
  ``shape`` is a `PlanShape` (steps, CFG branches, latent frames, block names: what a model would tell);
  ``options`` the probe's own keywords as given (or as ``options()`` filled them). A `Branch` says, per condition:
  ``at``, its *branch step*: the first step where its run differs from the group's clean run (noise at step k:
  k; 0: nothing shared; a condition whose hooks record or edit before step k declares at most that step); ``steps``
  (None: the settings'), ``runs`` (sampling runs per sample: N seeds, N), ``stored=False`` for a run the batch needs
  that is no row (a clean recording), ``shares`` (conditions with one key read one run: counted once). With prefix
  reuse a condition costs (steps - at) x branches x runs NFE per sample, else steps x branches x runs. The batch run
  reuses the clean run's prefix where it passes the branch steps to `steplens.probes.base.condition_runner`
  (``branch_of``, ``clean``; the group's clean condition must share the batch run: ``group``) and stores ``nfe``
  and ``nfe_without_reuse`` on every row (`condition_runner` does; `ProbeBase` counts the rows of a batch run that
  does not and stores the batch's count on its first condition). Default (`ProbeBase.plan`): refused, naming the
  probe.
- ``reads(data) -> bool``: whether a results.json (parsed) is this probe's (default: ``data["probe"] == name``).
- ``claims`` (tuple of `Claim`): the study's claims the probe tests, each with its rule as code and as text, and the
  evidence the rule needs (``needs``/``needs_text``): without it the verdict is "undetermined", with why. The shared
  gates live here: `right_runs_needed` (a claim about runs that end right: >= `MIN_RIGHT_RUNS` of them),
  `difference_needed` (a difference: a paired 95% interval that excludes 0, either way), `rate_excludes_floor`. A
  result that lacks a number the rule reads is undetermined too (never a traceback); every verdict cell shows its
  number and rule (`Claim.cell`). tests/probes/test_claim_evidence.py feeds every claim zero and too little evidence:
  a new claim adds its case there.
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
# Whether a claim's rule follows the study's stated protocol or is steplens' own (Claim.protocol).
PROTOCOLS = ("study", "ours")
STUDY = "Demystifying Video Reasoning, arXiv 2603.16870"
WORDS = {HOLDS: "holds", DOES_NOT_HOLD: "does not hold", UNDETERMINED: "undetermined"}


def state_word(state) -> str:
    """"holds", "does not hold" or "undetermined" for a verdict's state."""
    return WORDS[state if state == UNDETERMINED else bool(state)]


@dataclass(frozen=True)
class Claim:
    """One of the study's claims, judged on a probe's result by a stated rule, on stated evidence.

    ``protocol`` says whether the rule follows the study's stated protocol (``"study"``) or is its author's own
    (``"ours"``; None: not said), ``source`` where the claim and its protocol come from (the judge's text carries both).
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
    protocol: str | None = None  # "study": the rule follows the study's stated protocol; "ours": steplens' own
    source: str = ""  # where the claim and its protocol come from (a public text), or why the protocol is ours

    def __post_init__(self):
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ValueError(f"claim {self.id}: protocol {self.protocol!r}; allowed: {', '.join(PROTOCOLS)}")

    @property
    def protocol_text(self) -> str:
        """Whether the rule follows the study's stated protocol or is ours, with the source ("" if not said)."""
        if self.protocol is None:
            return ""
        head = "the study's stated protocol" if self.protocol == "study" else "ours, not the study's stated protocol"
        return f"{head}; source: {self.source}" if self.source else head

    def _read(self, headline: dict, table: list):
        """(rule's answer, what was measured, why evidence is missing or None); a result that lacks what the rule
        reads (a number never measured: no runs, an empty table) is missing evidence, never an error or a verdict."""
        try:
            why = self.needs(headline, table)
        except MISSING as e:
            why = f"the result lacks what the rule needs ({_lacks(e)})"
        try:
            holds = self.rule(headline, table)
        except MISSING as e:
            holds, why = DOES_NOT_HOLD, why or f"the result lacks what the rule reads ({_lacks(e)})"
        try:
            number = self.evidence(headline, table)
        except MISSING:
            number = "nothing measured"
        return holds, number, why

    def judge(self, headline: dict, table: list) -> tuple[bool | str, str] | None:
        """(state, evidence with the rule): state True (holds), False (does not hold) or `UNDETERMINED` (the evidence
        is missing; the text starts with why), or None when this result cannot test the claim."""
        holds, number, why = self._read(headline, table)
        if holds is NOT_TESTED:
            return None
        text = f"{number} (rule: {self.rule_text})"
        if self.needs_text:
            text += f" (needs: {self.needs_text})"
        if self.protocol_text:
            text += f" (protocol: {self.protocol_text})"
        if why:
            return UNDETERMINED, f"undetermined: {why}; {text}"
        return bool(holds), text

    def cell(self, headline: dict, table: list) -> str | None:
        """The verdict as a table cell shows it: its state, the number it stands on and its rule ("does not hold: 0
        of 12 runs (rule: at least one run)"; "undetermined: why; the number (rule: ...)"); None: not tested."""
        holds, number, why = self._read(headline, table)
        if holds is NOT_TESTED:
            return None
        if why:
            return f"undetermined: {why}; {number} (rule: {self.rule_text})"
        return f"{state_word(bool(holds))}: {number} (rule: {self.rule_text})"


# What a result lacks when a rule reads a number that was never measured (no runs, an empty table, a None).
MISSING = (KeyError, IndexError, TypeError, ZeroDivisionError, ValueError)
MIN_RUNS = 10  # runs a count over runs (candidates held, a behaviour) needs before it says anything (at least)
MIN_RIGHT_RUNS = 10  # runs that end right a claim about what happens on the way to a right answer needs (at least)


def _lacks(e: Exception) -> str:
    return f"no {e.args[0]!r}" if isinstance(e, KeyError) and e.args else f"{type(e).__name__}: {e}"


def solved_of(headline: dict) -> int:
    """The runs that ended right, from a headline's runs and solve rate."""
    return round((headline.get("solve_rate") or 0.0) * (headline.get("runs") or 0))


def right_runs_needed(headline: dict, least: int = MIN_RIGHT_RUNS) -> str | None:
    """None when at least `least` runs ended right, else why not (a claim's ``needs``)."""
    k, n = solved_of(headline), headline.get("runs") or 0
    return None if k >= least else f"{k} of {n} runs end right (the rule needs >= {least})"


def difference_needed(d: dict | None, what: str, scale: float = 1.0, unit: str = "") -> str | None:
    """None when a paired difference's 95% interval (``ci_low``, ``ci_high``; ``mean`` or ``delta``, ``n``)
    excludes 0, either way; else why not: an interval that holds 0 says neither that the difference is there nor
    that it is not (a claim's ``needs``)."""
    if not d or d.get("ci_low") is None or d.get("ci_high") is None:
        return f"no {what} measured"
    lo, hi = d["ci_low"], d["ci_high"]
    if lo > 0 or hi < 0:
        return None
    mean = d.get("mean", d.get("delta", 0.0)) or 0.0
    n = f" on {d['n']} samples" if d.get("n") is not None else ""
    return (f"{what} {scale * mean:+.3f}{unit} [{scale * lo:+.3f}, {scale * hi:+.3f}]{n}: the 95% interval holds 0, so "
            f"the difference is not determined either way")


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

    - ``count``: the `steplens.orchestrators.study.StudyConfig` field giving its samples (``probe_count``, ``sweep_count``,
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


@dataclass(frozen=True)
class Branch:
    """What one condition's run costs and shares (a probe's ``plan``; see the module doc)."""

    at: int = 0  # the first step where it differs from the group's clean run (0: nothing shared)
    steps: int | None = None  # its sampling steps (None: the settings')
    runs: int = 1  # sampling runs per sample (N seeds: N)
    stored: bool = True  # False: a run the batch needs that is no row (a clean recording)
    shares: str | None = None  # conditions with one key read one run (counted once per batch)
    forwards: int | None = None  # denoiser forwards per sample and CFG branch where not steps x runs (a search)
    at_most: bool = False  # True: `forwards` bounds what the run spends (a chain stops once its verifier accepts)

    def nfe(self, steps: int, branches: int, reuse: bool = True) -> int:
        """NFE per sample of this condition's run, with or without prefix reuse."""
        if self.forwards is not None:
            return self.forwards * branches
        n = self.steps or steps
        return (n - (min(self.at, n) if reuse else 0)) * branches * self.runs


@dataclass(frozen=True)
class PlanShape:
    """What a plan needs to know of the model and the samples, without either: the sampling steps, the CFG
    branches per step (2 with CFG on, else 1; a two-expert step runs one expert: no more), the latent frames of
    the samples, and the model's block names."""

    steps: int
    branches: int = 1
    frames: int = 2
    blocks: tuple = ()

    @classmethod
    def of(cls, run: "ProbeRun") -> "PlanShape":
        s = run.settings
        frames = min((x.frames for x in run.samples), default=s.frames or 2)
        return cls(s.steps, 2 if (s.guidance or 1.0) != 1.0 else 1, frames, tuple(run.model.block_names))


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
           "summary", "reads", "headline_text", "report_section")  # `plan` is optional (ProbeBase refuses it)


def check_probe(probe, where: str = "") -> None:
    """Refuse, with the missing members named, an object that does not implement the probe contract."""
    missing = [m for m in MEMBERS if not hasattr(probe, m)]
    if missing or not isinstance(probe, Probe):
        raise TypeError(f"{where or type(probe).__name__} does not implement the steplens probe contract "
                        f"(steplens.probes.contract.Probe): missing {', '.join(missing)}")
    bad = [c for c in probe.claims if not isinstance(c, Claim)]
    if bad:
        raise TypeError(f"{where or probe.name}: claims must be steplens.probes.contract.Claim objects, got {bad[0]!r}")
