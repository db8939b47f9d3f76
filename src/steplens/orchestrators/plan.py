"""`--plan`: the bill of an experiment before it runs: jobs (samples x conditions), NFE with and without prefix
reuse, and device-hours = NFE x seconds per NFE / 3600, per part.

Every probe names its conditions and their branch steps from the settings alone (`Probe.plan`, see
steplens.probes.contract; the same job list its `conditions` runs), so a plan needs no model run: only a
`PlanShape` (steps, CFG branches, latent frames, block names), which a `Planner` answers for one run's settings as
the run resolves them (the model's own sampling, its blocks, its frames for the samples the run will load, counted
without being made: any count prices at once). The study's plan is `steplens.orchestrators.study_plan`.

NFE counts one denoiser forward per sample, step and CFG branch (a two-expert step runs one expert); a condition
branching at step k costs (steps - k) x branches with reuse, steps x branches without. Seconds per NFE come from
`--sec-per-nfe` (e.g. a public figure: 328 s for 40 steps of VBVR-Wan2.2 with CFG on one H100 is 328 / (40 x 2) =
4.1 s) or, with a loaded model, from timing its forwards (`measure_sec_per_nfe`); else the estimate is unknown.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..probes.contract import Branch, PlanShape


def check_sec_per_nfe(value: float | None, where: str = "--sec-per-nfe") -> float | None:
    """None, or a positive finite number of seconds; anything else refused naming the value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where} {value!r}: seconds per model forward evaluation must be a positive number (e.g. "
                         f"4.1: 328 s for 40 steps with CFG, 2 forwards a step, on one H100)")
    return float(value)


def branch_nfe(branches: dict[str, Branch], shape: PlanShape, reuse: bool = True) -> int:
    """NFE per sample of a probe's conditions (runs that several conditions share counted once)."""
    seen: set[str] = set()
    total = 0
    for b in branches.values():
        if b.shares is not None:
            if b.shares in seen:
                continue
            seen.add(b.shares)
        total += b.nfe(shape.steps, shape.branches, reuse)
    return total


@dataclass
class PartPlan:
    part: str
    samples: int
    conditions: int  # stored conditions (rows per sample)
    nfe: int
    nfe_without_reuse: int
    at_most: bool = False  # True: the NFE bound what the run spends (a chain stops once its verifier accepts)
    jobs: int = -1  # stored rows: samples x conditions unless given (runs on samples another run counted: samples 0)

    def __post_init__(self):
        if self.jobs < 0:
            self.jobs = self.samples * self.conditions

    def __add__(self, other: "PartPlan") -> "PartPlan":
        """Two runs of one part (two families, two models) as one: samples, jobs and NFE added, conditions per sample
        kept where they agree (else the jobs over the samples)."""
        samples = self.samples + other.samples
        jobs = self.jobs + other.jobs
        cond = self.conditions if self.conditions == other.conditions else (jobs // samples if samples else 0)
        return PartPlan(self.part, samples, cond, self.nfe + other.nfe,
                        self.nfe_without_reuse + other.nfe_without_reuse, self.at_most or other.at_most, jobs)


@dataclass
class Planner:
    """What a plan asks of a model, without running it: its own sampling (steps, shift, guidance: where a run's
    settings leave them None), its block names, and the latent frames of a sample of n video frames. `of(model)`:
    a loaded model's (the embedded one is a few MB); a pipeline folder's is read from its files (the CLI)."""

    steps: int | None
    shift: float | None
    guidance: float | None
    blocks: tuple
    frames_from_video: Callable[[int], int] | None
    model: Any = None

    @classmethod
    def of(cls, model) -> "Planner":
        from ..presets import own

        return cls(*own(model), tuple(model.block_names), model.frames_from_video, model)

    def settings(self, settings):
        """The run's settings as the run resolves them (`ExperimentSettings.for_model`): None is the model's own."""
        return settings.model_copy(update={k: getattr(self, k) if getattr(settings, k) is None else getattr(settings, k)
                                           for k in ("steps", "shift", "guidance")})

    def shape(self, settings) -> tuple[PlanShape, int]:
        """(PlanShape, samples) of one run with these (resolved) settings: its samples counted, their frames read."""
        n, frames = source_shape(settings, self.frames_from_video)
        return PlanShape(settings.steps, 2 if (settings.guidance or 1.0) != 1.0 else 1, frames, self.blocks), n

    def part(self, probe, settings, options: dict | None = None, part: str | None = None) -> PartPlan:
        """The plan of `probe.run(model, out, settings, **options)`."""
        s = self.settings(settings)
        shape, n = self.shape(s)
        return plan_probe(probe, s, shape, n, options, part)


def source_shape(settings, frames_from_video) -> tuple[int, int]:
    """(samples, latent frames every sample has) of an experiment's sample source as the run would load them, without
    making them all: a folder's samples are read (a folder is finite), generated ones counted (the frames those of
    the first: a task draws every sample of one size at the same frame count), so that a count of 10^9 is priced at
    once."""
    src = settings.source()
    if src.data is not None:
        samples = src.load(frames_from_video)
        return len(samples), min((x.frames for x in samples), default=settings.frames or 2)
    from ..tasks.folders import DEFAULT_COUNT

    one = src.model_copy(update={"count": 1}).load(frames_from_video)
    return src.count or DEFAULT_COUNT, one[0].frames


def plan_probe(probe, settings, shape: PlanShape, samples: int, options: dict | None = None,
               part: str | None = None) -> PartPlan:
    """The plan of one probe run on `samples` samples (its options as the run would get them)."""
    branches = probe.plan(settings, shape, dict(options or {}))
    stored = sum(b.stored for b in branches.values())
    return PartPlan(part or probe.name, samples, stored, samples * branch_nfe(branches, shape),
                    samples * branch_nfe(branches, shape, reuse=False), any(b.at_most for b in branches.values()))


def plan_rows(parts: list[PartPlan], sec_per_nfe: float | None) -> list[dict]:
    """One row per part and a total: jobs, NFE with and without reuse, their ratio, device-hours of both."""
    sec = check_sec_per_nfe(sec_per_nfe)

    def hours(nfe: int) -> str:
        return "estimate unknown" if sec is None else f"{nfe * sec / 3600:,.1f}"

    rows = []
    for p in [*parts, PartPlan("total", 0, 0, sum(x.nfe for x in parts), sum(x.nfe_without_reuse for x in parts))]:
        total = p.part == "total"
        rows.append({"part": p.part, "samples": "" if total else p.samples,
                     "conditions": "" if total else p.conditions,
                     "jobs": sum(x.jobs for x in parts) if total else p.jobs,
                     "NFE": ("at most " if p.at_most or (total and any(x.at_most for x in parts)) else "")
                     + f"{p.nfe:,}", "NFE without reuse": f"{p.nfe_without_reuse:,}",
                     "ratio": f"{p.nfe / p.nfe_without_reuse:.3f}" if p.nfe_without_reuse else "",
                     "device-hours": hours(p.nfe), "device-hours without reuse": hours(p.nfe_without_reuse)})
    return rows


def plan_json(parts: list[PartPlan], sec_per_nfe: float | None) -> dict:
    """`--plan --json`: {"parts": [...], "nfe", "nfe_without_reuse", "device_hours"} (device-hours None where the
    seconds per NFE are unknown); a part whose NFE bound what it spends says `"at_most": true`."""
    sec = check_sec_per_nfe(sec_per_nfe)

    def hours(nfe: int) -> float | None:
        return None if sec is None else nfe * sec / 3600

    out = [{"part": p.part, "samples": p.samples, "conditions": p.conditions, "jobs": p.jobs, "nfe": p.nfe,
            "nfe_without_reuse": p.nfe_without_reuse, "device_hours": hours(p.nfe),
            "device_hours_without_reuse": hours(p.nfe_without_reuse), "at_most": p.at_most} for p in parts]
    nfe = sum(p.nfe for p in parts)
    return {"parts": out, "nfe": nfe, "nfe_without_reuse": sum(p.nfe_without_reuse for p in parts),
            "device_hours": hours(nfe), "sec_per_nfe": sec, "at_most": any(p.at_most for p in parts)}


def markdown_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def plan_text(rows: list[dict], shape: PlanShape, sec_per_nfe: float | None, what: str = "") -> str:
    """The plan as a heading line, the table, and how device-hours were estimated."""
    head = (f"plan{': ' + what if what else ''} ({shape.steps} steps, {shape.branches} CFG branch"
            f"{'es' if shape.branches != 1 else ''} per step, {shape.frames} latent frames"
            f"{', %d blocks' % len(shape.blocks) if shape.blocks else ''})\n")
    how = (f"device-hours = NFE x {sec_per_nfe:g} s / 3600" if sec_per_nfe is not None else
           "device-hours: estimate unknown (give --sec-per-nfe S; with a loaded model one forward is timed)")
    return head + markdown_table(rows) + how + "\n"


def measure_sec_per_nfe(model, sample, sampling, batch: int = 1) -> float:
    """Seconds per NFE of this model on this sample sampled `batch` at a time (the run's --batch: a batched forward
    costs far less per sample than a lone one): a run stopped before step 1 and one stopped before step 2,
    each timed three times (the fastest kept); their difference over the NFE between them (what the set-up of a run
    costs cancels out), sampled with `sampling` (steplens.presets.Sampling). Where a busy machine times the longer
    run no slower, the longer run over its own NFE (an upper bound, set-up included): never a vanishing estimate."""
    from ..tape import forwards, run_until

    steps = sampling.steps

    def timed(stop: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        with forwards(model, stop_before=stop) as c:
            run_until(lambda: model.generate([sample] * batch, [int(sample.seed) + i for i in range(batch)],
                                             sampling=sampling))
        return time.perf_counter() - t0, c.nfe

    if steps < 2:
        t, n = timed(1)
        return t / max(1, n)
    runs = [(timed(1), timed(2)) for _ in range(3)]
    (t1, n1), (t2, n2) = min(r[0] for r in runs), min(r[1] for r in runs)
    if t2 > t1 and n2 > n1:
        return (t2 - t1) / (n2 - n1)
    return t2 / max(1, n2)


def study_cost(out) -> dict:
    """{part path: cost} and the total, from every results.json under a study's folder (its probes' counts)."""
    import json
    from pathlib import Path

    out = Path(out)
    parts = {}
    for p in sorted(out.rglob("results.json")):
        if "store" in p.relative_to(out).parts:
            continue
        try:
            cost = json.loads(p.read_text()).get("cost")
        except (OSError, ValueError):
            continue
        if cost:
            parts[p.parent.relative_to(out).as_posix()] = cost
    total = {"nfe": sum(c["nfe"] for c in parts.values()),
             "nfe_without_reuse": sum(c["nfe_without_reuse"] for c in parts.values())}
    return {"parts": parts, "total": total}
