"""Prefix reuse in the probes on a real tiny diffusers Wan2.2 (two experts, CFG on, UniPC: a scheduler with
history): noise, propagation and swap store the same rows bit for bit with reuse on and off, at less NFE, as each
probe's plan says."""

import json

import pytest

pytest.importorskip("diffusers")

from steplens.backends.wan import WanPipelineModel  # noqa: E402
from steplens.probes import get_probe  # noqa: E402
from steplens.probes.base import ProbeSettings  # noqa: E402
from steplens.probes.contract import PlanShape  # noqa: E402
from steplens.tape import no_reuse  # noqa: E402

S = ProbeSettings(count=2, steps=4, size=3, frames=3, batch=2, guidance=5.0)
CASES = {"noise": ({}, {"mix_strengths": ()}), "propagation": ({}, {"inject": [1, 3]}),
         "swap": ({"task": "maze-two-goals"}, {"steps": [2], "blocks": ["blocks.0"]})}


def rows(out):
    got = [json.loads(x) for x in (out / "store" / "rows.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in r.items() if k not in ("nfe", "nfe_without_reuse")} for r in got),
                  key=lambda r: (r["condition"], r["sample"]))


@pytest.mark.parametrize("name", CASES)
def test_reuse_is_bit_identical_on_wan22_unipc(pipes, name, tmp_path):
    model = WanPipelineModel(pipes("wan22", "unipc"))
    upd, options = CASES[name]
    s, p = S.model_copy(update=upd), get_probe(name)
    on = p.run(model, tmp_path / "on", s, progress=False, **options)
    with no_reuse():
        off = p.run(model, tmp_path / "off", s, progress=False, **options)
    assert rows(tmp_path / "on") == rows(tmp_path / "off")
    assert on["table"] == off["table"]
    samples = json.loads((tmp_path / "on" / "results.json").read_text())["samples"]
    plan = p.plan(s, PlanShape(s.steps, 2, 2, tuple(model.block_names)), options)  # CFG on: 2 branches a step
    per = {reuse: sum(b.nfe(s.steps, 2, reuse) for b in plan.values()) * samples for reuse in (True, False)}
    if name != "noise":  # noise's default frames depend on the samples' latent frames: checked on the embedded model
        assert on["cost"] == {"nfe": per[True], "nfe_without_reuse": per[False]}
    assert off["cost"]["nfe"] == off["cost"]["nfe_without_reuse"] == on["cost"]["nfe_without_reuse"]
    assert on["cost"]["nfe"] < on["cost"]["nfe_without_reuse"]
