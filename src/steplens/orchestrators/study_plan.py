"""`steplens study --plan`: the study's bill, part by part, from the runs `run_study` makes: per family the same
settings (`study._settings`), options (each part's `StudyPart.options`), samples and frames (the family's own: a
task folder's, or the generated task's at its size), the parts that do not apply left out as the run leaves them;
the compare part on `compare_families` families (which ones the solve part decides: the costliest are priced, so
the bill is exact where families cost alike and an upper bound otherwise); the baseline's solve runs; and the
chains part, the runs `steplens.orchestrators.chains` makes (the two chains, then `matched_runs`), each model at its
own sampling. Everything through `Planner.part`, which prices a probe run by its own `plan`."""

from __future__ import annotations

from .plan import PartPlan, Planner
from .study import CHAINS, SOLVE, StudyConfig, _settings


def _family(cfg: StudyConfig, name: str, folders: dict | None) -> tuple[object, list, int | None]:
    """(task or None, the solve runs' sizes, the size of its default difficulty) of a family, as `run_study` has
    them."""
    from ..tasks import find_task, generator_task, next_size

    if cfg.data is None:
        task = generator_task(name)
        size, edge = task.default_size, next_size(task, task.default_size)
        return task, [size] + ([edge] if edge is not None else []), size
    f = folders[name]
    return (None if f["taken_as_is"] else find_task(f["folder"])), [None], None


def _summed(plans: list[PartPlan]) -> list[PartPlan]:
    """One PartPlan per part name, in first-seen order."""
    out: dict[str, PartPlan] = {}
    for p in plans:
        out[p.part] = out[p.part] + p if p.part in out else p
    return list(out.values())


def study_plan(cfg: StudyConfig, planner: Planner, solve, parts: list, folders: dict | None = None,
               baseline: Planner | None = None) -> list[PartPlan]:
    """The plan of `run_study(model, out, cfg, baseline, folders=folders)`: `planner` the model's, `solve` the solve
    part's probe, `parts` the probes with a study part (in order), `baseline` the baseline model's planner (None:
    no baseline)."""
    plans: list[PartPlan] = []
    weakest: dict[str, list[PartPlan]] = {}
    for name in cfg.tasks:
        task, sizes, size = _family(cfg, name, folders)
        if SOLVE in cfg.parts:
            plans += [planner.part(solve, _settings(cfg, name, cfg.count, k), part=SOLVE) for k in sizes]
        for p in parts:
            if p.study.scope == "family" and not p.study.not_applicable(task):
                plans.append(planner.part(p, _settings(cfg, name, getattr(cfg, p.study.count)), p.study.options(cfg)))
            elif p.study.scope == "weakest" and cfg.compare_families:
                weakest.setdefault(name, []).append(
                    planner.part(p, _settings(cfg, name, getattr(cfg, p.study.count)), p.study.options(cfg)))
    if weakest:  # the families the solve part finds weakest: the costliest priced
        cost = {n: sum(x.nfe for x in ps) for n, ps in weakest.items()}
        chosen = sorted(cost, key=lambda n: -cost[n])[: cfg.compare_families]
        bound = len(set(cost.values())) > 1
        for n in chosen:
            plans += [PartPlan(x.part, x.samples, x.conditions, x.nfe, x.nfe_without_reuse, x.at_most or bound,
                               x.jobs) for x in weakest[n]]
    if baseline is not None and SOLVE in cfg.parts:
        trained = baseline.model.trained_tasks
        for name in cfg.tasks:
            _, _, size = _family(cfg, name, folders)
            if (folders[name]["task"] if cfg.data is not None else name) in trained:
                p = baseline.part(solve, _settings(cfg, name, cfg.count, size), part=f"baseline {SOLVE}")
                plans.append(p)
    if baseline is not None and CHAINS in cfg.parts:
        plans += chains_plan(cfg, planner, baseline, folders)
    return _summed(plans)


def chains_plan(cfg: StudyConfig, student: Planner, teacher: Planner, folders: dict | None = None) -> list[PartPlan]:
    """The chains part (`study._run_chains`): per family both models were trained on, the two chains on `count`
    samples (each model at its own sampling), then the probe runs at matched σ on `probe_count` samples."""
    from ..probes import get_probe
    from .chains import matched_runs, own_sampling

    s_model, t_model = student.model, teacher.model
    both = set(s_model.trained_tasks) & set(t_model.trained_tasks)
    plans: list[PartPlan] = []
    planners = {"student": student, "teacher": teacher}
    for name in cfg.tasks:
        _, _, size = _family(cfg, name, folders)
        task = folders[name]["task"] if cfg.data is not None else name
        if s_model.trained_tasks and t_model.trained_tasks and task not in both:
            continue
        s = own_sampling(_settings(cfg, name, cfg.count, size))
        nfe, n = 0, 0
        for role in ("teacher", "student"):  # chain_rows: one run of each model at its own sampling
            shape, n = planners[role].shape(planners[role].settings(s))
            nfe += shape.steps * shape.branches
        plans.append(PartPlan(CHAINS, n, 2, n * nfe, n * nfe))
        few = s.model_copy(update={"count": cfg.probe_count})
        seen = set()
        for probe, role, _, where, options in matched_runs(s_model, t_model):
            if where in seen:  # a folder named again resumes: nothing more runs
                continue
            seen.add(where)
            p = planners[role].part(get_probe(probe), few, options, part=CHAINS)
            # on samples the chains run counted already: its rows and NFE, no more samples
            plans.append(PartPlan(CHAINS, 0, 0, p.nfe, p.nfe_without_reuse, p.at_most, p.jobs))
    return plans

