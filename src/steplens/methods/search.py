"""Search along the denoising steps with a verifier that never sees the answer, with its compute (NFE) counted.

    cfg = SearchConfig(method="early-beam", n=8, k=3, m=2, verifier="task")
    check_search(cfg, num_steps=20, tasks=["maze"])              # before any model loads
    res = search(model, samples, seeds, cfg)                     # res.latents (B, C, T, h, w), res.nfe

Methods (`n` particles per sample; particle j of sample seed s draws the noise of the ensemble's member j,
`steplens.methods.ensemble.member_seeds`, so that best-of-n's particles are compare's N independent seeds):

- ``best-of-n``: the n particles run to the end; the verifier picks the best final video.
- ``early-beam`` (EPBS-style): the n particles run to step ``k`` and stop; the verifier scores their x̂0 at step k
  (decoded); the best ``m`` continue from their recorded forwards (`steplens.tape`: no step is computed twice) to the
  end, where the verifier picks. With later steps in ``steps``, the beams branch again: at each such step j the m
  survivors grow back to n (each parent's first child is its exact continuation, the others re-noise the parent's
  x̂0 at j to σ of step j + 1 with fresh noise, a `latent` edit), all n run to the next point and are scored, m kept.
- ``smc`` (Feynman–Kac steering): the n particles run to each step j of ``steps``; each gets the potential
  exp(λ (r_j − r_prev)) from its verifier score r on x̂0 (r_prev: its ancestor's score at the previous resampling,
  0 at the first); n children are drawn per sample by systematic resampling (a generator seeded by the sample's seed
  and the step); children of one parent are its exact continuation and re-noised copies, as above. At the end the
  verifier picks the best particle.
- ``chain`` (ChEaP-style; `chain`): generations chained until the verifier accepts, each generation searched with
  ``inner``; a task's ``continue_from(sample, frame)`` turns the verified part of an answer into the next sample.

NFE is what `steplens.tape.NFECounter` counts: one per sample and CFG branch per computed step; steps replayed from
a tape are not computed again. Per sample and CFG branch, with S steps: best-of-n n·S; early-beam without later
steps n·(k+1) + m·(S−k−1), with later points p_1 < ... n·(k+1) + n·(p_1−k) + ... + m·(S−p_last−1); smc n·S.

The verifier (`steplens.tasks.get_verifier`: ``task``, ``consensus``, plug-ins) sees `strip_sample` of each sample only, and
videos as uint8 (T, H, W, 3): the decoded x̂0 at a step, or the final video.

Every search shows its work: `SearchResult.decisions` holds, per sample, each choice among two or more particles
(`decision`): early-beam's ``keep`` (the m best go on), smc's ``resample`` (parents drawn by weight, with
multiplicity) and the final ``pick``, each with the particles' members, their verifier scores, the chosen
positions, whether the verifier ``separated`` the candidates (not all scores equal) and whether the tie rule
decided (``tied``: the last one kept and the first one dropped score alike). The tie rule (`TIE_RULE`): the lowest
particle index wins, so a verifier that scores every candidate alike makes best-of-n, early-beam and smc return
particle 0, the one seed's video; the rows (`search_record`) and compare's budget table count such samples.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..hooks import Hooks
from ..tape import ForwardTape, NFECounter, forwards, run_until
from ..tasks import (Score, strength_of, check_samples, check_verifier_task, find_task, get_verifier, strip_sample, tasks_with,
                     verifier_names, verify_many)
from .ensemble import member_seeds

METHODS = ("best-of-n", "early-beam", "smc", "chain", "backtrack")
AXIS = {"best-of-n": "seeds", "early-beam": "steps", "smc": "steps", "backtrack": "time", "chain": "task restart"}
"""What each search method searches along: more seeds, the denoising steps (choosing among x̂0 early), the video's
time (restarting from a verified prefix of frames) or the task (restarting it from the verified part of the answer)."""
TIE_RULE = ("lowest particle index: among equal verifier scores the particle earlier in the population wins (at "
            "the start member 0, the one seed's noise; after a branching, a parent's exact continuation before its "
            "re-noised copies)")
Method = Literal["best-of-n", "early-beam", "smc", "chain", "backtrack"]


# -- verifiers ----------------------------------------------------------------------------------------------------
def all_verifier_names() -> list[str]:
    return verifier_names()


def make_verifier(name: str):
    """The verifier named `name` (`steplens.tasks.get_verifier`: `task`, `consensus`, plug-ins); unknown: refused
    with the list."""
    return get_verifier(name)


# -- configuration ------------------------------------------------------------------------------------------------
class SearchConfig(BaseModel):
    """A search method and its numbers; everything checkable without a model is checked here."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "best-of-n"
    n: int = 4  # particles per sample
    k: int | None = None  # early-beam: the step whose x̂0 is scored first (default: `default_k`)
    m: int = 1  # early-beam: beams kept
    steps: list[int] = []  # early-beam: later branching steps; smc: resampling steps
    verifier: str = "task"
    lam: float = 10.0  # smc: the potential's inverse temperature
    inner: Literal["best-of-n", "early-beam", "smc"] = "best-of-n"  # chain: how each generation is searched
    links: int = 4  # chain: generations at most

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, v):
        if v not in METHODS:
            raise ValueError(f"unknown search method {v!r}; available: {', '.join(METHODS)}")
        return v

    @field_validator("n", "m", "links")
    @classmethod
    def _positive(cls, v, info):
        if isinstance(v, bool) or v < 1:
            raise ValueError(f"{info.field_name} = {v!r}: must be an integer >= 1")
        return v

    @field_validator("k")
    @classmethod
    def _k(cls, v):
        if v is not None and v < 0:
            raise ValueError(f"k = {v}: the beam step must be a step index >= 0")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v):
        bad = [s for s in v if s < 0]
        if bad or len(set(v)) != len(v):
            raise ValueError(f"steps {v}: step indices >= 0, each once")
        return sorted(v)

    @field_validator("verifier")
    @classmethod
    def _verifier(cls, v):
        if v not in all_verifier_names():
            raise ValueError(f"unknown verifier {v!r}; available: {', '.join(all_verifier_names())}")
        return v

    @field_validator("lam")
    @classmethod
    def _lam(cls, v):
        if not v >= 0:
            raise ValueError(f"lam = {v!r}: the potential's inverse temperature must be >= 0")
        return v

    @model_validator(mode="after")
    def _beams(self):
        if self.m > self.n:
            raise ValueError(f"beams wider than the particles: keep m = {self.m} of n = {self.n} particles; "
                             f"m must be <= n")
        if self.method == "smc" and not self.steps:
            raise ValueError("smc needs resampling steps (steps=[...], --resample-steps)")
        return self

    def inner_config(self) -> "SearchConfig":
        return self.model_copy(update={"method": self.inner})


def default_k(num_steps: int) -> int:
    """The beam step by default: the last of the first 15% of the steps (step 2 of 20), where the study finds a
    seed's plan visible in x̂0."""
    return max(0, -(-15 * num_steps // 100) - 1)


def beam_step(cfg: SearchConfig, num_steps: int) -> int:
    return default_k(num_steps) if cfg.k is None else cfg.k


def check_search(cfg: SearchConfig, num_steps: int | None = None, tasks=(), samples=()) -> None:
    """Refuse, before sampling, steps the schedule does not have, a task the method or verifier cannot do, and
    samples the verifier cannot read (`steplens.tasks.check_samples`: the `task` verifier on a folder steplens did
    not draw, naming `consensus` and plug-ins)."""
    method = cfg.inner if cfg.method == "chain" else cfg.method
    if num_steps is not None:
        if method == "early-beam":
            k = beam_step(cfg, num_steps)
            if k >= num_steps - 1:
                raise ValueError(f"beam step k = {k}: must be below the last step ({num_steps - 1}) of {num_steps} "
                                 f"steps, or nothing is left to search")
            bad = [s for s in cfg.steps if not k < s < num_steps - 1]
            if bad:
                raise ValueError(f"early-beam branching step {bad[0]}: must lie after k = {k} and before the last "
                                 f"step {num_steps - 1}")
        if method == "smc":
            bad = [s for s in cfg.steps if not s < num_steps - 1]
            if bad:
                raise ValueError(f"smc resampling step {bad[0]}: must be before the last step {num_steps - 1} of "
                                 f"{num_steps} steps")
    verifier = make_verifier(cfg.verifier)
    if cfg.method == "backtrack":
        from .backtrack import check_backtrack

        check_backtrack(None, tasks, cfg.verifier)
    for t in dict.fromkeys(tasks):
        if cfg.method == "chain" and not callable(getattr(find_task(t), "continue_from", None)):
            have = tasks_with("continue_from")
            raise ValueError(f"chain needs a task with a continue_from hook; task {t!r} has none (tasks with one: "
                             f"{', '.join(have) or 'none'})")
        check_verifier_task(verifier, t)
    if samples:  # as the verifier will see them
        check_samples(verifier, [strip_sample(x) for x in samples])


def search_nfe(cfg: SearchConfig, num_steps: int) -> int:
    """NFE per sample and CFG branch of a search (see the module doc); chain: of one generation."""
    S, n = num_steps, cfg.n
    method = cfg.inner if cfg.method == "chain" else cfg.method
    if method in ("best-of-n", "smc", "backtrack"):  # backtrack: n generations at most
        return n * S
    points = [beam_step(cfg, S), *cfg.steps]
    return n * (points[-1] + 1) + cfg.m * (S - points[-1] - 1)


def config_for_budget(cfg: SearchConfig, budget: float, num_steps: int) -> SearchConfig:
    """The same method with the most particles whose NFE stays within `budget` plain runs (budget x steps);
    refused where even the fewest particles the method needs cost more."""
    if not budget >= 1:
        raise ValueError(f"budget {budget!r}: below one plain run's NFE; give budgets >= 1 (units of one run)")
    limit = budget * num_steps
    # search_nfe is a x n + b with a >= 1 (see the module doc): the largest n within the limit, in closed form (a
    # budget of a million plain runs answers at once)
    a = search_nfe(cfg.model_copy(update={"n": 2}), num_steps) - search_nfe(cfg.model_copy(update={"n": 1}), num_steps)
    b = search_nfe(cfg.model_copy(update={"n": 1}), num_steps) - a
    n = max(1, math.floor((limit + 1e-9 - b) / a))
    need = max(cfg.m, 1)
    out = cfg.model_copy(update={"n": max(n, need)})
    if search_nfe(out, num_steps) > limit + 1e-9:
        raise ValueError(f"budget {budget}: {cfg.method} with m = {cfg.m} needs at least "
                         f"{search_nfe(out, num_steps) / num_steps:.2f} plain runs")
    return out


# -- particles ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Particle:
    sample: int  # index into the batch's samples
    seed: int  # its initial noise
    member: int  # which particle of the sample it started as
    renoise: tuple = ()  # (step, x0 (C, T, h, w), noise seed): re-noisings on its lineage, replayed alike


def fresh_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:7], "little")


def _renoise_hooks(model, pop: list[Particle], num_steps: int) -> Hooks | None:
    events: dict[int, list[tuple[int, torch.Tensor, int]]] = {}
    for row, p in enumerate(pop):
        for step, x0, seed in p.renoise:
            events.setdefault(step, []).append((row, x0, seed))
    if not events:
        return None

    def fn(x: torch.Tensor, ctx) -> torch.Tensor:
        x = x.clone()
        s = float(ctx.sigma)
        for row, x0, seed in events.get(ctx.step, ()):
            eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
            x[row] = ((1 - s) * x0.float() + s * eps).to(x)
        return x
    return Hooks(model, num_steps).edit("latent", fn, steps=sorted(events))


@dataclass
class Gen:
    """How every run of a search samples: its steplens.presets.Sampling and frames (None: the model's own)."""
    sampling: Any
    frames: int | None = None

    @property
    def steps(self) -> int:
        return self.sampling.steps


def _run(model, samples, pop: list[Particle], gen: Gen, tape: ForwardTape | None, upto: int,
         stop_before: int | None, counter: NFECounter, probe: dict | None = None):
    """Run the population: (x0 at step stop_before - 1 or None, final latents or None, the population's tape);
    `probe` ({step: None}) gets x0 at its steps."""
    x0: dict[int, torch.Tensor] = {}
    want = None if stop_before is None else stop_before - 1

    def cb(st):
        if st.i == want:
            x0[st.i] = st.x0.detach().clone()
        if probe is not None and st.i in probe:
            probe[st.i] = st.x0.detach().clone()
    batch = [samples[p.sample] for p in pop]
    new = ForwardTape(batch=len(pop))
    hooks = _renoise_hooks(model, pop, gen.steps)

    def go():
        return model.generate(batch, [p.seed for p in pop], gen.frames, gen.sampling, callback=cb, hooks=hooks)
    before = counter.nfe + counter.replayed
    with forwards(model, record=new, replay=tape, upto=upto if tape is not None else 0, stop_before=stop_before,
                  counter=counter):
        if hooks is not None:
            with hooks:
                out = run_until(go)
        else:
            out = run_until(go)
    if counter.nfe + counter.replayed == before or (stop_before is not None and out is not None):
        raise RuntimeError(f"steplens.tape saw no denoiser forward of model {model.name!r} ({model.backend}) or could "
                           f"not stop it before step {stop_before}: its modules() are not what the sampler runs; a "
                           f"search needs the tape to count, stop and replay them")
    merged = ForwardTape({**(tape.outputs if tape is not None else {}), **new.outputs}, len(pop))
    return x0.get(want), out, merged


def decoded(model, latents: torch.Tensor) -> list[np.ndarray]:
    """Latents (B, C, T, h, w) -> B uint8 videos (T, H, W, 3) as a verifier reads them."""
    from ..io.video import to_rgb

    px = model.decode(latents)  # (B, 3, T, H, W)
    rgb = to_rgb(px.movedim(2, 1).flatten(0, 1))
    rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return list(rgb.reshape(px.shape[0], px.shape[2], *rgb.shape[1:]))


def _verify(verifier, model, samples, pop: list[Particle], latents: torch.Tensor, videos=None) -> list[Score]:
    """Each particle's score, the particles of one sample judged together (a group verifier compares them). A lone
    particle is not judged by a group verifier (one with `verify_many`, such as `consensus`: nothing to agree with):
    score 0, not accepted, details {"alone": True}; there is nothing to choose among then either. `videos`: the
    latents already decoded (`decoded`), where the caller has them."""
    videos = decoded(model, latents) if videos is None else videos
    out: list[Score | None] = [None] * len(pop)
    group = callable(getattr(verifier, "verify_many", None))
    for i in dict.fromkeys(p.sample for p in pop):
        rows = [r for r, p in enumerate(pop) if p.sample == i]
        if group and len(rows) == 1:
            out[rows[0]] = Score(score=0.0, success=False, details={"alone": True})
            continue
        for r, sc in zip(rows, verify_many(verifier, [videos[r] for r in rows], strip_sample(samples[i]))):
            out[r] = sc
    return out


def _best(rows: list[int], scores: list[Score]) -> int:
    """The row of the best score (ties: the first, `TIE_RULE`)."""
    return max(rows, key=lambda r: (scores[r].score, -r))


def decision(kind: str, step: int, members: list[int], scores: list[float], chosen: list[int]) -> dict:
    """One choice among particles: `chosen` positions (into members / scores) of a ``keep`` or ``pick`` (the best by
    score, `TIE_RULE` among equals) or the parents of a ``resample`` (drawn by weight). ``separated``: the scores are
    not all equal; ``tied``: the tie rule decided (a keep / pick whose last chosen and first passed-over particle
    score alike; a resampling draws by weight and uses no rule)."""
    scores = [float(x) for x in scores]
    tied = False
    if kind != "resample":
        passed = [scores[j] for j in range(len(scores)) if j not in set(chosen)]
        tied = bool(passed) and min(scores[j] for j in chosen) == max(passed)
    return {"step": int(step), "kind": kind, "members": [int(m) for m in members], "scores": scores,
            "chosen": [int(j) for j in chosen], "separated": len(set(scores)) > 1, "tied": tied}


def _decisions(kind, step, pop, scores, nsamples, chosen_rows) -> list[dict | None]:
    """Per sample: its decision among its rows of pop (None with fewer than two particles: nothing to choose)."""
    out = []
    for i in range(nsamples):
        rows = [r for r, p in enumerate(pop) if p.sample == i]
        if len(rows) < 2:
            out.append(None)
            continue
        pos = {r: j for j, r in enumerate(rows)}
        out.append(decision(kind, step, [pop[r].member for r in rows], [scores[r].score for r in rows],
                            [pos[r] for r in chosen_rows if r in pos]))
    return out


def search_record(res: "SearchResult", i: int, cfg: SearchConfig) -> dict:
    """What a row of sample i records of its search: the verifier, every decision, whether the verifier separated
    the candidates at any of them (None: nothing to choose), how many the tie rule decided, the chosen particle's
    member and whether it is the one seed's own run (member 0, never re-noised)."""
    ds = res.decisions[i] if res.decisions else []
    p = res.survivors_chosen[i] if res.survivors_chosen else None
    if res.backtracks:  # generations along time, not choices among particles
        hist = res.backtracks[i]
        return {"verifier": cfg.verifier, "generations": len(hist), "backtrack": hist,
                "kept_frames": hist[-1]["known"], "first_failures": [h["first_failure"] for h in hist]}
    return {"verifier": cfg.verifier, "decisions": ds,
            "separated": any(d["separated"] for d in ds) if ds else None,
            "ties": sum(d["tied"] for d in ds), "picked": int(res.chosen[i]),
            "picked_one_seed": bool(res.chosen[i] == 0 and (p is None or not p.renoise)) if cfg.method != "chain"
            else None}


@dataclass
class SearchResult:
    """What a search chose and what it spent. `latents` (B, C, T, h, w): the chosen particle of each sample;
    `chosen`: its starting member; `scores`: the verifier's Score of the chosen final video; `nfe`: the counter;
    `stages`: per scoring point, the step and each particle's (member, score); `finals`: the final latents of every
    particle that ran to the end (B lists)."""
    latents: torch.Tensor
    chosen: list[int]
    scores: list[Score]
    nfe: NFECounter
    stages: list[dict] = field(default_factory=list)
    finals: list[torch.Tensor] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)  # chain: per generation
    survivors: list[Particle] = field(default_factory=list)  # the particles that ran to the end, batch order
    final_samples: list = field(default_factory=list)  # chain: the sample each last generation answered
    decisions: list[list[dict]] = field(default_factory=list)  # per sample: its choices (`decision`), in order
    survivors_chosen: list[Particle] = field(default_factory=list)  # per sample: the chosen particle
    backtracks: list[list[dict]] = field(default_factory=list)  # backtrack: per sample, its generations


def _finish(model, samples, pop, gen, tape, upto, counter, verifier, stages, probe_steps=(),
            decisions=None) -> SearchResult:
    decisions = decisions if decisions is not None else [[] for _ in samples]
    probe = {k: None for k in probe_steps if k >= upto}
    _, out, _ = _run(model, samples, pop, gen, tape, upto, None, counter, probe)
    for k in sorted(probe):  # the verifier on x̂0 at probed steps, every particle (how early the answer shows)
        stages.append({**_stage_record(k, pop, _verify(verifier, model, samples, pop, probe[k]), len(samples)),
                       "probe": True})
    return _pick(samples, pop, out, _verify(verifier, model, samples, pop, out), gen.steps - 1, counter, stages,
                 decisions)


def _pick(samples, pop, out, scores, last_step, counter, stages, decisions) -> SearchResult:
    """The particle each sample's verifier scores highest (`TIE_RULE`) among its final latents `out` (pop's rows)."""
    chosen, latents, finals, picked, best = [], [], [], [], []
    for i in range(len(samples)):
        rows = [r for r, p in enumerate(pop) if p.sample == i]
        r = _best(rows, scores)
        best.append(r)
        chosen.append(pop[r].member)
        latents.append(out[r])
        finals.append(out[rows])
        picked.append(scores[r])
    stages.append({"step": last_step, "particles": [[(pop[r].member, scores[r].score) for r in range(len(pop))
                                                      if pop[r].sample == i] for i in range(len(samples))]})
    for i, d in enumerate(_decisions("pick", last_step, pop, scores, len(samples), best)):
        if d is not None:
            decisions[i].append(d)
    return SearchResult(torch.stack(latents), chosen, picked, counter, stages, finals, survivors=list(pop),
                        decisions=decisions, survivors_chosen=[pop[r] for r in best])


def particle_latents(res: SearchResult) -> torch.Tensor:
    """Every particle's final latents of a best-of-n `search` result, one row per particle in the order of
    `res.survivors` (the order `repick` judges them in; `decoded` turns them into the videos it may be given)."""
    if res.backtracks or res.links or not res.finals or len(res.survivors) != sum(len(f) for f in res.finals):
        raise ValueError("repick reads best-of-n's particles: a search result of method best-of-n")
    order = {}  # the survivors' rows of each sample, in the order `finals` holds them
    for r, p in enumerate(res.survivors):
        order.setdefault(p.sample, []).append(r)
    out = torch.empty((len(res.survivors), *res.finals[0].shape[1:]), dtype=res.finals[0].dtype)
    for i, f in enumerate(res.finals):
        out[order[i]] = f
    return out


def repick(model, samples, res: SearchResult, verifier_name: str, verifier=None, videos=None) -> SearchResult:
    """Best-of-n's particles picked again, by another verifier, without a forward: what `search` with method best-of-n
    and `verifier_name` returns on the same samples and seeds (its particles do not depend on the verifier: particle
    j starts from the sample's seed and member j, `steplens.methods.ensemble.member_seeds`). `res`: a best-of-n
    `search` result (its `finals`, every particle's final latents); `videos`: those latents decoded once
    (`decoded(model, particle_latents(res))`) where several verifiers repick. NFE: none (`res.nfe` counts the
    particles)."""
    out = particle_latents(res)
    verifier = verifier or make_verifier(verifier_name)
    check_samples(verifier, [strip_sample(x) for x in samples])
    pop = list(res.survivors)
    last = res.stages[-1]["step"] if res.stages else 0
    return _pick(samples, pop, out, _verify(verifier, model, samples, pop, out, videos), last, NFECounter(), [],
                 [[] for _ in samples])


def _children(pop, parents: list[int], x0: torch.Tensor, step: int, stage: int) -> list[Particle]:
    """One child per entry of `parents` (rows of pop, grouped): a parent's first child continues it exactly, the
    others re-noise its x̂0 at `step` with fresh noise."""
    seen: dict[int, int] = {}
    out = []
    for r in parents:
        p = pop[r]
        c = seen.get(r, 0)
        seen[r] = c + 1
        if c == 0:
            out.append(p)
        else:
            out.append(Particle(p.sample, p.seed, p.member,
                                p.renoise + ((step, x0[r].detach().clone(), fresh_seed(p.seed, step, stage, c,
                                                                                         len(p.renoise))),)))
    return out


def _stage_record(step, pop, scores, nsamples):
    return {"step": step, "particles": [[(pop[r].member, scores[r].score) for r in range(len(pop))
                                         if pop[r].sample == i] for i in range(nsamples)]}


def search(model, samples, seeds, cfg: SearchConfig, sampling=None, frames: int | None = None,
           counter: NFECounter | None = None, verifier=None, probe_steps=()) -> SearchResult:
    """Search `cfg.method` for every sample (seeds: one per sample), every run sampled with `sampling`
    (steplens.presets.Sampling; None: the model's own). `probe_steps` (best-of-n): also verify every particle's x̂0
    at these steps (stages marked "probe"; no NFE)."""
    from ..presets import sampled

    sampling = sampled(model, sampling)
    if cfg.method == "chain":
        return chain(model, samples, seeds, cfg, sampling, frames, counter, verifier)
    num_steps = sampling.steps
    check_search(cfg, num_steps)
    gen = Gen(sampling, frames)
    counter = counter if counter is not None else NFECounter()
    verifier = verifier or make_verifier(cfg.verifier)
    check_samples(verifier, [strip_sample(x) for x in samples])  # before any forward: a sample it cannot read
    if cfg.method == "backtrack":
        from .backtrack import backtrack

        return backtrack(model, samples, seeds, cfg, gen, counter, verifier, fresh_seed, decoded, SearchResult)
    decisions: list[list[dict]] = [[] for _ in samples]
    n = cfg.n
    pop = [Particle(i // n, s, i % n) for i, s in enumerate(member_seeds(list(seeds), n))]
    stages: list[dict] = []

    def record(kind, step, scores, chosen_rows):
        for i, d in enumerate(_decisions(kind, step, pop, scores, len(samples), chosen_rows)):
            if d is not None:
                decisions[i].append(d)
    if cfg.method == "best-of-n":
        return _finish(model, samples, pop, gen, None, 0, counter, verifier, stages, probe_steps, decisions)
    tape, upto = None, 0
    if cfg.method == "early-beam":
        points = [beam_step(cfg, num_steps), *cfg.steps]
        for stage, p in enumerate(points):
            x0, _, tape = _run(model, samples, pop, gen, tape, upto, p + 1, counter)
            scores = _verify(verifier, model, samples, pop, x0)
            stages.append(_stage_record(p, pop, scores, len(samples)))
            kept = []
            for i in range(len(samples)):
                rows = [r for r, q in enumerate(pop) if q.sample == i]
                top = sorted(rows, key=lambda r: (-scores[r].score, r))[:cfg.m]  # ties: TIE_RULE
                kept.append(sorted(top))
            record("keep", p, scores, [r for top in kept for r in top])
            if stage < len(points) - 1:  # branch again: the m survivors back to n
                parents = [r for top in kept for j, r in enumerate(top)
                           for _ in range(n // cfg.m + (1 if j < n % cfg.m else 0))]
                pop = _children(pop, parents, x0, p + 1, stage)
            else:
                parents = [r for top in kept for r in top]
                pop = [pop[r] for r in parents]
            tape, upto = tape.select(parents), p + 1
        return _finish(model, samples, pop, gen, tape, upto, counter, verifier, stages, decisions=decisions)
    # smc
    prev = np.zeros(len(pop))
    for stage, p in enumerate(cfg.steps):
        x0, _, tape = _run(model, samples, pop, gen, tape, upto, p + 1, counter)
        scores = _verify(verifier, model, samples, pop, x0)
        stages.append(_stage_record(p, pop, scores, len(samples)))
        r_now = np.array([s.score for s in scores])
        parents = []
        for i in range(len(samples)):
            rows = [r for r, q in enumerate(pop) if q.sample == i]
            logw = cfg.lam * (r_now[rows] - prev[rows])
            w = np.exp(logw - logw.max())
            w /= w.sum()
            u = (np.random.default_rng([int(seeds[i]) % 2**32, stage]).random() + np.arange(n)) / n
            idx = np.minimum(np.searchsorted(np.cumsum(w), u), n - 1)  # systematic resampling
            parents += [rows[j] for j in idx]
        record("resample", p, scores, parents)
        pop = _children(pop, parents, x0, p + 1, stage)
        prev = r_now[parents]
        tape, upto = tape.select(parents), p + 1
    return _finish(model, samples, pop, gen, tape, upto, counter, verifier, stages, decisions=decisions)


# -- chain ----------------------------------------------------------------------------------------------------------
def chain(model, samples, seeds, cfg: SearchConfig, sampling=None, frames=None,
          counter: NFECounter | None = None, verifier=None) -> SearchResult:
    """Generations chained until the verifier accepts (at most `cfg.links`), each searched with `cfg.inner`.

    A generation's chosen final frame, not accepted, goes to its task's ``continue_from(sample, frame)``: the next
    sample (the maze: the start moves to the tip of the verified prefix of the path), searched with fresh
    seeds. NFE: every generation's, summed. The result's `latents` are each sample's last generation's; `links` holds
    per generation the samples, accepted flags and scores, and `final_samples` the sample each last generation
    answered (score the chain's answer against it: an ordinary sample of the task with its own ground truth)."""
    for s in samples:
        if not callable(getattr(find_task(s.task), "continue_from", None)):
            check_search(cfg, None, [s.task])
    verifier = verifier or make_verifier(cfg.verifier)
    counter = counter if counter is not None else NFECounter()
    inner = cfg.inner_config()
    # what a link keeps of an answer is no stronger than the verifier: a solver's prefix (on a shortest path) only
    # with a solver; any other verifier keeps what the task's validity rules vouch for (`strength="checker"`)
    prefix_kw = {} if strength_of(verifier) == "solver" else {"strength": "checker"}
    current = list(samples)
    todo = list(range(len(samples)))
    latents: list[torch.Tensor | None] = [None] * len(samples)
    scores: list[Score | None] = [None] * len(samples)
    chosen = [0] * len(samples)
    decisions: list[list[dict]] = [[] for _ in samples]
    links: list[dict] = []
    for link in range(cfg.links):
        batch = [current[i] for i in todo]
        res = search(model, batch, [fresh_seed(int(seeds[i]), link) if link else int(seeds[i]) for i in todo],
                     inner, sampling, frames, counter, verifier)
        videos = decoded(model, res.latents)
        accepted = [bool(sc.success) for sc in res.scores]
        links.append({"link": link, "samples": [i for i in todo], "accepted": accepted,
                      "scores": [sc.score for sc in res.scores], "nfe": counter.nfe})
        nxt = []
        for j, i in enumerate(todo):
            latents[i], scores[i], chosen[i] = res.latents[j], res.scores[j], res.chosen[j]
            decisions[i] += [{**d, "link": link} for d in res.decisions[j]]
            if not accepted[j] and link < cfg.links - 1:
                task = find_task(current[i].task)
                try:
                    current[i] = task.continue_from(current[i], videos[j][-1], **prefix_kw)
                except ValueError:
                    continue  # nothing the next link could build on: this answer stays
                nxt.append(i)
        todo = nxt
        if not todo:
            break
    return SearchResult(torch.stack(latents), chosen, scores, counter, links=links, final_samples=current,
                        decisions=decisions)


# -- searched and scored: the rows of eval and compare ----------------------------------------------------------------
def search_rows(model, samples, cfg: SearchConfig, scorers, sampling=None, frames: int | None = None,
                batch: int = 50, progress: bool = False) -> list[dict]:
    """One row per sample, its noise seed `sample.seed`: the scorer's `success` and `score` of the chosen video
    (chain: against the sample its last generation answered), the verifier's `verified` / `verifier_score`, and the
    search's `nfe` per sample (each batch's NFE split evenly over its samples: the methods spend alike per sample)."""
    from tqdm import tqdm

    from ..experiments.evaluate import score_videos
    from ..experiments.grid import batches

    if cfg.method == "backtrack":  # the model's frame conditioning, before the first forward
        from .backtrack import check_backtrack

        check_backtrack(model, [s.task for s in samples], cfg.verifier)
    rows = []
    with tqdm(total=len(samples), desc=f"search {cfg.method}", disable=not progress) as bar:
        for chunk in batches(list(samples), batch):
            res = search(model, chunk, [int(s.seed) for s in chunk], cfg, sampling, frames)
            judged = res.final_samples or chunk
            scored = score_videos(judged, decoded(model, res.latents), scorers, details=cfg.method == "chain")
            for j, (s, r, v) in enumerate(zip(chunk, scored, res.scores)):
                share = last_link_share(judged[j], r) if res.links else None
                r = {k: x for k, x in r.items() if k != "details"}
                rows.append({"sample": s.name, "task": s.task, **r, "verified": bool(v.success),
                             "verifier_score": float(v.score), "nfe": res.nfe.nfe / len(chunk),
                             "nfe_without_reuse": res.nfe.nfe / len(chunk),  # a search replays only its own tape
                             **search_record(res, j, cfg),
                             **({"links": sum(1 for x in res.links if s.name in
                                              {chunk[j].name for j in x["samples"]})} if res.links else {}),
                             **({"last_link_share": share} if share is not None else {})})
            bar.update(len(chunk))
    return rows


def last_link_share(final_sample, row: dict) -> float | None:
    """The share of a chain's final answer drawn by its last link: the last link's path (its orange pixels and the
    step onto the goal) against the whole path from the first start (the links before it: the sample's
    `chain_prefix`). 1.0 for a chain solved in one link; None where the task records no path (not a maze)."""
    details = row.get("details") or {}
    if "path_pixels" not in details:
        return None
    before = max(0, len((final_sample.meta or {}).get("chain_prefix", [])) - 1)
    last = int(details["path_pixels"]) + 1
    return last / (before + last)


# -- how early x̂0 tells: AUC of the step-k verifier for final success ------------------------------------------------
def roc_auc(scores, labels) -> float | None:
    """The probability that a positive outranks a negative (ties count half): the Mann-Whitney AUC; None without
    both classes."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def probe_steps(num_steps: int, count: int = 8) -> list[int]:
    """The steps whose x̂0 the AUC reads: about `count` steps spread over the first half, and the last step."""
    half = max(1, num_steps // 2)
    every = max(1, -(-half // count))
    return sorted({*range(0, half, every), num_steps - 1})


def step_auc(rows: list[dict]) -> list[dict]:
    """Per task family and probed step: the AUC of the verifier's score on a particle's x̂0 at that step for the
    scorer's final success of that particle, pooled over the particles of every sample (rows carrying
    `particles`: {"steps", "v" (per particle, per step), "final" (per particle)})."""
    out = []
    for task in sorted({r["task"] for r in rows if r.get("particles")}):
        mine = [r["particles"] for r in rows if r.get("particles") and r["task"] == task]
        steps = mine[0]["steps"]
        final = [f for p in mine for f in p["final"]]
        for j, k in enumerate(steps):
            v = [vs[j] for p in mine for vs in p["v"]]
            out.append({"task": task, "step": k, "particles": len(final), "final_rate": float(np.mean(final)),
                        "auc": roc_auc(v, final)})
    return out
