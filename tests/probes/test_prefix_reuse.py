"""Prefix reuse in the probes, on the embedded model (a real tiny network): noise, propagation and swap give the same
rows bit for bit with reuse on and off (steplens.tape.no_reuse), their NFE is stored per row and in results.json,
equals what each probe's plan says, and reuse costs less; --no-reuse keeps the store's identity; a resumed run whose
clean row is stored recomputes (and counts) the clean run for its tape."""

import json

import pytest

from steplens.probes import get_probe
from steplens.probes.base import ProbeSettings
from steplens.probes.contract import PlanShape
from steplens.tape import no_reuse

S = ProbeSettings(count=3, steps=6, size=3, frames=4, batch=2)
COST = ("nfe", "nfe_without_reuse")
CASES = {"noise": ({}, {"mix_strengths": (0.5,), "mix_every": 2}),
         "propagation": ({}, {"inject": [0, 2, 5]}),
         "swap": ({"task": "maze-two-goals"}, {"steps": [0, 3, 5]})}


def rows(out):
    lines = (out / "store" / "rows.jsonl").read_text().splitlines()
    return sorted((json.loads(x) for x in lines), key=lambda r: (r["condition"], r["sample"]))


def strip(rs):
    return [{k: v for k, v in r.items() if k not in COST} for r in rs]


def plan_nfe(name, s, model, options, reuse=True):
    p = get_probe(name)
    shape = PlanShape(s.steps, 1, s.frames, tuple(model.block_names))
    return sum(b.nfe(s.steps, 1, reuse) for b in p.plan(s, shape, options).values()) * s.count


@pytest.mark.parametrize("name", CASES)
def test_reuse_is_bit_identical_and_cheaper(name, tiny_model, tmp_path):
    upd, options = CASES[name]
    s = S.model_copy(update=upd)
    p = get_probe(name)
    on = p.run(tiny_model, tmp_path / "on", s, progress=False, **options)
    with no_reuse():
        off = p.run(tiny_model, tmp_path / "off", s, progress=False, **options)
    assert strip(rows(tmp_path / "on")) == strip(rows(tmp_path / "off"))  # every stored number, bit for bit
    assert on["table"] == off["table"] and on["headline"] == off["headline"]
    # the cost: per row, summed in results.json, as the plan says
    assert all(r["nfe"] <= r["nfe_without_reuse"] for r in rows(tmp_path / "on"))
    assert all(r["nfe"] == r["nfe_without_reuse"] for r in rows(tmp_path / "off"))
    assert off["cost"]["nfe"] == off["cost"]["nfe_without_reuse"] == on["cost"]["nfe_without_reuse"]
    assert on["cost"]["nfe"] < on["cost"]["nfe_without_reuse"]
    assert on["cost"]["nfe"] == plan_nfe(name, s, tiny_model, options)
    assert on["cost"]["nfe_without_reuse"] == plan_nfe(name, s, tiny_model, options, reuse=False)
    data = json.loads((tmp_path / "on" / "results.json").read_text())
    assert data["cost"] == on["cost"]
    # --no-reuse does not change the folder's identity: it resumes the folder reuse wrote (nothing left to run)
    with no_reuse():
        again = p.run(tiny_model, tmp_path / "on", s, progress=False, **options)
    assert again["table"] == on["table"] and again["cost"] == on["cost"]
    assert json.loads((tmp_path / "on" / "store" / "store_config.json").read_text()) == \
        json.loads((tmp_path / "off" / "store" / "store_config.json").read_text())


def test_resume_with_the_clean_row_stored_recomputes_it_and_counts_it(tiny_model, tmp_path):
    p, options = get_probe("noise"), {"mix_strengths": ()}
    full = p.run(tiny_model, tmp_path / "a", S, progress=False, **options)
    before = strip(rows(tmp_path / "a"))
    # a run that stopped after the clean rows: only they are stored
    store = tmp_path / "a" / "store"
    kept = [r for r in rows(tmp_path / "a") if r["condition"] == "clean"]
    (store / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    again = p.run(tiny_model, tmp_path / "a", S, progress=False, **options)
    assert strip(rows(tmp_path / "a")) == before
    assert again["table"] == full["table"] and again["headline"] == full["headline"]
    # the clean run was recomputed (6 steps per sample) to record its tape: counted once more, on a reader's row
    assert again["cost"]["nfe"] == full["cost"]["nfe"] + 6 * S.count
    assert again["cost"]["nfe_without_reuse"] == full["cost"]["nfe_without_reuse"]


def test_hooks_before_the_branch_step_forbid_reuse(tiny_model):
    """A condition that declares branch step k but whose hooks act earlier branches where they act."""
    from steplens.hooks import Hooks
    from steplens.probes.base import condition_runner
    from steplens.tasks import get_task

    batch = [get_task("maze").sample(i, 3, 4) for i in range(2)]
    s = S.model_copy(update={"count": 2})

    def make(c, b):
        if c == "clean":
            return None
        return Hooks(tiny_model, s.steps).edit("latent", steps=[1], fn=lambda x, ctx: x * 0.5)

    reused = condition_runner(tiny_model, s, make, branch_of=lambda c: 4, clean="clean")(["clean", "late"], batch)
    with no_reuse():
        whole = condition_runner(tiny_model, s, make, branch_of=lambda c: 4, clean="clean")(["clean", "late"], batch)
    assert strip(reused["late"]) == strip(whole["late"])
    assert [r["nfe"] for r in reused["late"]] == [6 - 1] * 2  # branched at the hook's step 1, not the declared 4
