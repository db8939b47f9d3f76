"""--plan: each probe's conditions and branch steps from the settings alone; NFE with and without prefix reuse and
device-hours per part; the study's setting (VBVR-Wan2.2: 50 steps, CFG, 21 latent frames, 40 blocks) under 0.6."""

import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.experiments.grid import ExperimentSettings
from steplens.orchestrators.plan import branch_nfe, check_sec_per_nfe, plan_probe, plan_rows
from steplens.orchestrators.study import study_probes
from steplens.probes import get_probe
from steplens.probes.contract import PlanShape
from steplens.probes.noise import default_frame_steps, default_frames

WAN = PlanShape(50, 2, 21, tuple(f"blocks.{i}" for i in range(40)))
S = ExperimentSettings(steps=50, guidance=5.0)


def test_noise_at_the_studys_size_costs_under_0_6_and_no_more_trajectories():
    noise = get_probe("noise")
    new = noise.plan(S, WAN, {})
    old = noise.plan(S, WAN, {"frame_noise": "every-step"})
    assert len(new) <= len(old) == 1 + 50 + 21 + 26  # no more trajectories than the every-step protocol's 98
    ratio = branch_nfe(new, WAN) / branch_nfe(new, WAN, reuse=False)
    old_ratio = branch_nfe(old, WAN) / branch_nfe(old, WAN, reuse=False)
    assert ratio <= 0.6 and old_ratio == pytest.approx(0.623, abs=1e-3)  # the arithmetic: 0.62
    assert {c for c in new if c.startswith("frame")} == {f"frame {f} step {k}" for f in (1, 10, 20)
                                                           for k in (6, 18, 31, 43)}
    assert all(new[f"frame {f} step {k}"].at == k for f in (1, 10, 20) for k in (6, 18, 31, 43))


@pytest.mark.parametrize("steps", [2, 4, 20, 50])
@pytest.mark.parametrize("frames", range(2, 32))
def test_default_frame_conditions_fit_the_old_budget(steps, frames):
    fs = default_frames(frames)
    ks = default_frame_steps(steps, frames, len(fs))
    assert 1 <= len(fs) * len(ks) <= frames and all(0 <= k < steps for k in ks)


def test_rows_hours_and_bad_seconds():
    part = plan_probe(get_probe("noise"), S, WAN, 200)
    rows = plan_rows([part], 4.1)
    assert rows[0]["jobs"] == 200 * part.conditions and rows[-1]["part"] == "total"
    assert rows[0]["device-hours"] == f"{part.nfe * 4.1 / 3600:,.1f}"
    assert plan_rows([part], None)[0]["device-hours"] == "estimate unknown"
    for bad in (0, -4.1, float("nan"), float("inf"), True, "4"):
        with pytest.raises(ValueError, match="--sec-per-nfe .*positive number"):
            check_sec_per_nfe(bad)


@pytest.mark.slow  # end to end, 3-10 s: make test, not test-fast
def test_study_plan_on_a_folder_skips_the_next_difficulty(tmp_path):
    from builders import make_vbvr

    from steplens.orchestrators.plan import Planner
    from steplens.orchestrators.study import folder_study_config
    from steplens.orchestrators.study_plan import study_plan

    make_vbvr(tmp_path / "vbvr", per_task=3, size=3, frames=3)
    cfg, folders = folder_study_config(tmp_path / "vbvr", None, None, None, count=200, probe_count=200,
                                       compare_families=2)
    cfg = cfg.model_copy(update={"steps": 50, "guidance": 5.0})
    wan = Planner(50, None, 5.0, WAN.blocks, lambda n: 21)  # every sample: 21 latent frames, as VBVR-Wan2.2's 81
    parts = {p.part: p for p in study_plan(cfg, wan, get_probe("behaviours"), study_probes(), folders)}
    assert parts["solve"].samples == 2 * 3  # each task folder's 3 samples once: no next difficulty
    assert parts["noise"].nfe / parts["noise"].nfe_without_reuse <= 0.6
    assert parts["noise"].nfe == plan_probe(get_probe("noise"), S, WAN, 6).nfe  # at the samples' 21 frames
    assert parts["propagation"].conditions == 50  # injections at every step; the clean recording is no row
    assert parts["swap"].samples == 3  # maze-two-goals drawn by steplens: its swap pair; maze: none


def test_cli_plan_prints_before_running_and_writes_nothing(tmp_path):
    r = CliRunner().invoke(app, ["probe", "noise", "--plan", "--count", "3", "--steps", "4", "--size", "3",
                                 "--frames", "3", "--sec-per-nfe", "2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "| noise | 3 |" in r.output and "device-hours = NFE x 2 s / 3600" in r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(app, ["probe", "noise", "--plan", "--count", "1", "--steps", "3", "--size", "3",
                                 "--frames", "3", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0 and "measured" in r.output and "s per NFE" in r.output, r.output


def test_timed_seconds_per_nfe_is_positive_when_the_longer_run_times_shorter(tiny_model, monkeypatch):
    """Finding (a new user's `study --plan` on a busy machine): the run stopped before step 2 timed shorter than the
    one stopped before step 1, so the difference went negative and the plan printed "1e-09 s per NFE" and 0.0
    device-hours. A clock that makes every later run faster than the one before reproduces it deterministically."""
    import itertools

    import steplens.orchestrators.plan as plan
    from steplens.presets import resolve
    from steplens.tasks import get_task

    ticks = itertools.count()
    durations = itertools.chain([5.0, 1.0], itertools.repeat(0.5))  # each run's time, shrinking (a noisy machine)
    state = {"t": 0.0, "open": False}

    def clock():
        # perf_counter is read twice a run: at its start and at its end
        if state["open"]:
            state["t"] += next(durations)
        state["open"] = not state["open"]
        next(ticks)
        return state["t"]

    monkeypatch.setattr(plan.time, "perf_counter", clock)
    sample = get_task("maze").sample(0, 3)
    sec = plan.measure_sec_per_nfe(tiny_model, sample, resolve(tiny_model, steps=4))
    assert sec > 1e-3, f"{sec} s per NFE: a noisy timing must not make the estimate vanish"


def test_seconds_per_nfe_are_timed_on_the_runs_batch(tiny_model, monkeypatch):
    """Finding: the plan timed one lone sample's forward (0.116 s per NFE for tiny-reasoner) while its runs batch 50
    samples a forward (about 0.01 s per sample-NFE here), so `study --plan` billed 21 device-hours for about 2. The
    timing now runs the run's batch, and a forward of B samples counts B NFE."""
    import steplens.orchestrators.plan as plan
    from steplens.presets import resolve
    from steplens.tasks import get_task

    state = {"t": 0.0, "open": False, "runs": 0}

    def clock():  # a run stopped before step 1 takes 1 s, one stopped before step 2 takes 3 s
        if state["open"]:
            state["t"] += 1.0 if state["runs"] % 2 == 0 else 3.0
            state["runs"] += 1
        state["open"] = not state["open"]
        return state["t"]

    monkeypatch.setattr(plan.time, "perf_counter", clock)
    sample = get_task("maze").sample(0, 3)
    sec = plan.measure_sec_per_nfe(tiny_model, sample, resolve(tiny_model, steps=4), batch=4)
    assert sec == pytest.approx(2.0 / 4)  # 2 s more for one more step of 4 samples


def test_cli_plan_says_the_batch_it_timed(tmp_path):
    res = CliRunner().invoke(app, ["probe", "noise", "--out", str(tmp_path / "p"), "--count", "3", "--batch", "2",
                                   "--plan"])
    assert res.exit_code == 0, res.output
    assert "timed on a batch of 2" in res.output
    assert not (tmp_path / "p").exists()
