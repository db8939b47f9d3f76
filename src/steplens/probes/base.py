"""What every probe shares: the skeleton of a run (`ProbeBase`), settings, samples, one condition = one sampling
run, summaries, and the compute it costs.

A probe is a set of named *conditions*; a condition builds the hooks for a batch (or none, for the
clean baseline). Every (condition, sample) gives one row: success, score, and whatever extra metrics
the probe computes from the run. The loop over them is steplens.experiments.grid.run_grid (resumable,
extendable with more samples). The contract a probe implements is `steplens.probes.contract.Probe`.

*Prefix reuse.* A condition that follows the group's clean run until step k (noise at step k, a swap at step k)
declares k, its *branch step* (`Branch.at`; 0: nothing shared). `condition_runner(..., branch_of=, clean=)` records
the clean run's denoiser outputs once per batch (steplens.tape) and replays them for each such condition up to its
branch step: bit-identical to recomputing them (any scheduler: its arithmetic runs as before on identical inputs).
A condition's hooks that act before its declared step (a record, an edit) lower its branch step to theirs. Where
the clean row is stored but others are missing (a resumed run), the clean run is recomputed to record its tape and
its cost is stored on the first condition that reads it. `steplens.tape.no_reuse()` (the CLI's `--no-reuse`) turns
reuse off: the same rows, computed whole; the results store's identity does not change.

*NFE.* Every stored row holds `nfe` (the denoiser forward evaluations computed for that condition and sample: one
per step and CFG branch) and `nfe_without_reuse` (what it costs without prefix reuse), so totals survive a resumed
run; a run shared by several conditions (a recording, an N-seed generation) is stored on the first condition of the
batch that reads it. results.json holds their sums as `"cost": {"nfe", "nfe_without_reuse"}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..contract import identity
from ..experiments.dist import is_writer
from ..experiments.engine import Remote
from ..experiments.evaluate import generate_and_score, score_videos
from ..experiments.provenance import RUNTIME, check_resume, data_manifest, record, recorded, stage_provenance
from ..experiments.vbvr_scores import floors_beside, floors_for
from ..experiments.grid import (ExperimentSettings, load_samples, open_store, rows_of, run_grid, seeds_of,  # noqa: F401
                                write_results, write_table)
from ..experiments.stats import summarize
from ..hooks import Hooks
from ..io.video import to_uint8
from ..tape import ForwardTape, NFECounter, forwards, reuse_enabled
from ..tasks import DEFAULT_TASK, Sample, Scorers
from ..tasks.folders import taken_as_is
from .contract import Branch, PlanShape, ProbeRun

ProbeSettings = ExperimentSettings  # the settings every probe takes

MakeHooks = Callable[[list[Sample], list[int]], "Hooks | None"]


def score_outputs(model, samples: list[Sample], latents: torch.Tensor, scorers: Scorers) -> list[dict]:
    return score_videos(samples, [to_uint8(v) for v in model.decode(latents)], scorers)


def generate(model, s: ProbeSettings, batch: list[Sample], hooks: Hooks | None = None, steps: int | None = None,
             frames: int | None = None) -> torch.Tensor:
    """One batch sampled with the experiment's settings (`steps`: another step count) and hooks, attached for the
    call."""
    sampling = s.sampling_for(model, steps)
    if hooks is None:
        return model.generate(batch, seeds_of(batch), frames, sampling)
    with hooks:
        return model.generate(batch, seeds_of(batch), frames, sampling, hooks=hooks)


def first_hook_step(hooks: "Hooks | None", steps: int) -> int:
    """The first step at which any of the hooks acts (records or edits): `steps` for none, 0 for every step."""
    if hooks is None or not hooks.specs:
        return steps
    return min(0 if h.steps is None else min(h.steps) for h in hooks.specs)


def nfe_row(counter: NFECounter, n: int, shared: int = 0, recomputed: int = 0) -> dict:
    """A batch's counter as one sample's row fields (every sample of a batch runs the same steps and branches);
    `shared`: a shared run's NFE per sample stored on this row (both counts: it runs with or without reuse);
    `recomputed`: a stored run recomputed only to record its tape (a resumed run; no cost without reuse)."""
    return {"nfe": counter.nfe // n + shared + recomputed, "nfe_without_reuse": counter.without_reuse // n + shared}


def condition_runner(model, s: ProbeSettings, make_hooks: Callable[[str, list[Sample]], "Hooks | None"],
                     extra: Callable[[list[Sample], torch.Tensor, "Hooks | None"], list[dict]] | None = None,
                     steps_of: Callable[[str], int | None] = lambda c: None,
                     frames_of: Callable[[str], int | None] = lambda c: None,
                     branch_of: Callable[[str], int] | None = None, clean: str | None = None):
    """A `run` for experiment.run_grid where each condition is one sampling run with its own hooks; rows carry
    their NFE. With `branch_of(condition) -> step` and `clean` (the group's clean condition, no hooks), conditions
    branching at k > 0 replay the clean run's recorded prefix up to k (the module doc)."""
    scorers = s.scorers()

    def one(c, batch, record=None, replay=None, at=0):
        hooks = make_hooks(c, batch)
        steps = steps_of(c) or s.steps
        at = min(at, first_hook_step(hooks, steps)) if replay is not None else 0
        with forwards(model, record=record, replay=replay if at else None, upto=at) as counter:
            lat, rows = generate_and_score(model, batch, scorers, frames_of(c), s.sampling_for(model, steps), hooks)
        if extra is not None:
            for r, e in zip(rows, extra(batch, lat, hooks)):
                r.update(e)
        return rows, counter

    def run(conds, batch):
        got, n = {}, len(batch)
        same = lambda c: (steps_of(c), frames_of(c)) == (steps_of(clean), frames_of(clean))  # noqa: E731
        # a branch shares the clean run's prefix only where it samples as the clean run does (steps, frames)
        ats = {c: (branch_of(c) if branch_of is not None and reuse_enabled() and same(c) else 0)
               for c in conds if c != clean}
        tape, pending = None, 0
        if clean is not None and (clean in conds or any(ats.values())):
            tape = ForwardTape(batch=n) if any(ats.values()) else None
            rows, counter = one(clean, batch, record=tape)
            if clean in conds:
                got[clean] = [{**r, **nfe_row(counter, n)} for r in rows]
            else:  # stored already (a resumed run): recomputed for its tape, counted on the first reader
                pending = counter.nfe // n
        for c in conds:
            if c == clean:
                continue
            rows, counter = one(c, batch, replay=tape, at=ats[c])
            got[c] = [{**r, **nfe_row(counter, n, recomputed=pending)} for r in rows]
            pending = 0
        return got
    return run


def counted(model, run):
    """A batch run whose rows lack `nfe`, counted: the batch's NFE per sample stored on its first condition (the
    others read the same runs), `nfe_without_reuse` alike."""
    def wrapped(conds, batch):
        with forwards(model) as counter:
            got = run(conds, batch)
        if all("nfe" in r for rows in got.values() for r in rows):
            for rows in got.values():  # every row carries both counts (a run without prefix reuse: the same)
                for r in rows:
                    r.setdefault("nfe_without_reuse", r["nfe"])
            return got
        per = counter.nfe // max(1, len(batch))
        for i, c in enumerate(conds):
            for r in got.get(c, []):
                r.setdefault("nfe", per if i == 0 else 0)
                r.setdefault("nfe_without_reuse", r["nfe"])
        return got
    return wrapped


def cost_of(rows_by_condition: dict[str, list[dict]]) -> dict:
    """The stored rows' NFE summed: {"nfe", "nfe_without_reuse"} (+ "rows_uncounted": rows stored before NFE was
    counted, left out of both sums)."""
    rows = [r for rows in rows_by_condition.values() for r in rows]
    have = [r for r in rows if r.get("nfe") is not None]
    out = {"nfe": int(sum(r["nfe"] for r in have)),
           "nfe_without_reuse": int(sum(r.get("nfe_without_reuse", r["nfe"]) for r in have))}
    if len(have) < len(rows):
        out["rows_uncounted"] = len(rows) - len(have)
    return out


def cost_text(cost: dict | None) -> str:
    """One sentence for a report: the NFE computed, without prefix reuse, and their ratio."""
    if not cost:
        return "Compute: not counted (a run from before NFE was counted)."
    n, w = cost["nfe"], cost["nfe_without_reuse"]
    text = (f"Compute: {n:,} denoiser forward evaluations (NFE: one per step, sample and CFG branch); {w:,} without "
            f"prefix reuse" + (f" (ratio {n / w:.3f})" if w else "") + ".")
    if cost.get("rows_uncounted"):
        text += f" {cost['rows_uncounted']} rows were stored before NFE was counted and are left out."
    return text


def summary_rows(rows_by_condition: dict[str, list[dict]], **extra_cols) -> list[dict]:
    """One row per condition in the statistics schema (n, solved, solve_rate, ci_low, ci_high, mean_score)."""
    out = []
    for c, rows in rows_by_condition.items():
        out.append({"condition": c, **summarize(rows), **{k: v(c) for k, v in extra_cols.items()}})
    return out


def check_before_loading(probe, settings: ProbeSettings, **given) -> None:
    """What can be refused before a model loads (minutes on a 14B pipeline): the sample source (a generated task
    that does not exist), the scorer, and the probe's own options, through ``probe.options(None, settings,
    **given)`` (the contract: with no model, a probe checks what needs none; steps are the given ones or None)."""
    settings.source().check()
    settings.scorers()
    probe.options(None, settings, **given)


def rebuild(model, probe, out: str, settings: ProbeSettings, options: dict):
    """In a worker of another engine (steplens.experiments.engine): the probe's batch run around this worker's
    model, and its samples by name; what `ProbeBase.run` builds before its loop."""
    r = ProbeRun(model, Path(out), settings, probe.options(model, settings, **options))
    r.samples = load_samples(model, settings)
    probe.prepare(r)
    r.conditions = probe.conditions(r)
    return counted(model, probe.batch(r)), {x.name: x for x in r.samples}


def device_kind(model) -> str:
    """The kind of device a model runs on (cpu, cuda, ...): what a resume must share (ranks hold cuda:0, cuda:1)."""
    return torch.device(str(getattr(model, "device", "cpu") or "cpu")).type


def write_floors(out: Path, res: dict) -> None:
    """The floors beside the model into results.json (its `floors`) and floors.md / floors.csv."""
    from ..experiments.vbvr_scores import floors_markdown
    from ..io.files import atomic_write_json, atomic_write_text, read_config

    path = Path(out) / "results.json"
    if path.is_file():
        atomic_write_json(path, {**read_config(path), "floors": res["floors"]})
    atomic_write_text(Path(out) / "floors.md", floors_markdown(res["floors"]))
    write_table(res["floors"]["beside"], Path(out) / "floors.csv")


FLOORS_NOTE = ("the same evaluator, in the same mode, on the static first frame (repeated for the sample's frame "
               "count), on the ground-truth video and on a pan of the first frame: a score is read against what a "
               "still image already gets; scored once per folder (floors.json)")


def floors_section(rep, res: dict) -> None:
    """The floors beside the model in a report (a VBVR folder's run; nothing otherwise)."""
    fl = res.get("floors")
    if not fl:
        return
    rep.section(f"Floors beside the model ({fl['mode']} mode)", f"Mean scores per task and overall: {FLOORS_NOTE}.")
    rep.table(fl["beside"])


def floors_lines(res: dict) -> list[str]:
    """The floors beside the model as terminal lines (a VBVR folder's run; none otherwise)."""
    fl = res.get("floors")
    if not fl:
        return []
    rows = [{k: ("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in r.items()}
            for r in fl["beside"]]
    cols = list(rows[0])
    width = [max(len(c), *(len(r[c]) for r in rows)) for c in cols]
    return ([f"floors beside the model ({fl['mode']} mode): {FLOORS_NOTE}"]
            + ["  ".join(c.ljust(w) for c, w in zip(cols, width))]
            + ["  ".join(r[c].ljust(w) for c, w in zip(cols, width)) for r in rows])


class ProbeBase:
    """The skeleton every probe shares (see steplens.probes.contract): a subclass gives its name, description,
    claims, conditions, batch run, summary and report section, and overrides the other steps where it has its
    own."""

    name: str = ""
    description: str = ""
    claims: tuple = ()
    study = None

    @property
    def kind(self) -> str:
        return f"probe {self.name}"

    def default_task(self) -> str:
        return DEFAULT_TASK

    def run(self, model, out: Path, settings: ProbeSettings, progress: bool = True, **options) -> dict:
        settings = settings.for_model(model)  # steps, shift, guidance left None: the model's own
        r = ProbeRun(model, Path(out), settings, self.options(model, settings, **options))
        r.samples = load_samples(model, settings)
        self.prepare(r)
        r.conditions = self.conditions(r)
        self.check_plan(r)
        r.config = self.folder_config(r)
        man = data_manifest(r.samples)  # the data and the runtime a resume must share (issue 34)
        prov = stage_provenance(self.kind, man, device_kind(model), family=model.backend, config=r.config)
        check_resume(r.out, man, prov, RUNTIME + ("stage",))
        store = open_store(r.out, self.name, r.config)
        if is_writer():  # the folder is ours (its store opened): what it is made from, recorded
            man = recorded(r.out, man)
            record(r.out, man, {**prov, "data_manifest_sha256": man["sha256"]})
        if found := taken_as_is(r.samples):  # said in results.json, outside the store's identity
            r.config = {**r.config, "taken_as_is": found}
        remote = Remote(model, rebuild, (self, str(r.out), settings, options), key=str(r.out.resolve()))
        run_grid(store, list(r.conditions), r.samples, settings.batch, counted(model, self.batch(r)),
                 group=lambda c: self.group(r, c), desc=self.kind, progress=progress, remote=remote)
        rows = {c: rows_of(store, c, r.samples) for c in r.conditions}
        res = self.summary(r, rows)
        res["cost"] = cost_of(rows)
        if is_writer():  # every process holds the merged rows; one writes the tables and plots
            self.add_floors(r, res, rows)
            self.write(r, res)
            self.finish(r, res, rows)
            if res.get("floors"):
                write_floors(r.out, res)
        return res

    def model_condition(self, run: ProbeRun) -> str:
        """The condition whose scores stand for the model beside the floors: the first (the clean run, one seed)."""
        return next(iter(run.conditions))

    def add_floors(self, run: ProbeRun, res: dict, rows: dict[str, list[dict]]) -> None:
        """On a VBVR folder (a kit scores every sample): the floors (static first frame, ground truth, pan), scored
        once and cached in the folder's floors.json, beside the model's scores per task and overall (issue 34)."""
        table = floors_for(run.samples, run.settings.scorers(), run.out)
        if table is None:
            return
        cond = self.model_condition(run)
        task_of = {s.name: s.task for s in run.samples}
        model = [{**x, "task": x.get("task") or task_of.get(x.get("sample"))} for x in rows.get(cond, [])]
        res["floors"] = {**table, "model_condition": cond, "beside": floors_beside(table, model, f"model ({cond})")}

    def options(self, model, settings: ProbeSettings, **given) -> dict:
        return given

    def prepare(self, run: ProbeRun) -> None:
        pass

    def conditions(self, run: ProbeRun) -> dict:
        raise NotImplementedError

    def config(self, run: ProbeRun) -> dict:
        return dict(run.options)

    def folder_config(self, run: ProbeRun) -> dict:
        """What the folder records (its results store's identity, results.json's `config`): the settings, the probe's
        `config(run)` and the model's identity (its weights, LoRAs, dtype). Where an option takes a setting's name
        (the noise probe's `steps`, the steps it noises), the setting is kept under `settings` too: the swap probe
        swaps at steps 0, 1, 2 at both 4 and 5 sampling steps, and a 5-step rerun was taken for done in a 4-step
        folder."""
        settings, own = run.settings.describe(), self.config(run)
        shadowed = {k: v for k, v in settings.items() if k in own}
        return {**settings, **own, **({"settings": shadowed} if shadowed else {}), **identity(run.model)}

    def plan(self, settings: ProbeSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        """{condition: Branch} from the settings alone (steplens.probes.contract): a probe that can be planned
        overrides it."""
        raise ValueError(f"probe {self.name!r} does not say what its conditions cost (no plan); --plan cannot price it")

    def check_plan(self, run: ProbeRun) -> None:
        """The plan is the run's job list: a probe that has a plan must name in it, as stored conditions, exactly the
        conditions it runs (else `--plan` would price another experiment); checked before any work."""
        if type(self).plan is ProbeBase.plan:
            return  # no plan: --plan refuses the probe by name
        stored = [c for c, b in self.branches(run).items() if b.stored]
        if sorted(stored) != sorted(run.conditions):
            missing, extra = sorted(set(run.conditions) - set(stored)), sorted(set(stored) - set(run.conditions))
            raise ValueError(f"probe {self.name!r}: its plan and its run disagree (run, not planned: {missing[:5]}; "
                             f"planned, not run: {extra[:5]}); its `plan` must name the conditions `conditions` runs")

    def branches(self, run: ProbeRun) -> dict[str, Branch]:
        """The plan of this run (its settings, samples and resolved options)."""
        return self.plan(run.settings, PlanShape.of(run), run.options)

    def batch(self, run: ProbeRun):
        raise NotImplementedError

    def group(self, run: ProbeRun, condition: str):
        return condition

    def summary(self, run: ProbeRun, rows: dict[str, list[dict]]) -> dict:
        raise NotImplementedError

    def write(self, run: ProbeRun, res: dict) -> None:
        write_results(run.out, self.name, run.settings, run.config, res["table"], res["headline"],
                      samples=len(run.samples), cost=res.get("cost"), scored_by=run.settings.scorers().used(run.samples))

    def finish(self, run: ProbeRun, res: dict, rows: dict[str, list[dict]]) -> None:
        pass

    def reads(self, data: dict) -> bool:
        return data.get("probe") == self.name

    def headline_text(self, headline: dict, table: list) -> str:
        return ""

    def report_section(self, rep, out: Path, res: dict, rel: str = ".") -> None:
        raise NotImplementedError
