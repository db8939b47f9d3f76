"""Search methods (steplens.methods.search) end to end on the real tiny diffusers Wan2.2 pipeline (two experts, CFG
on), FlowMatch Euler and UniPC, with a plug-in verifier: NFE recorded as the arithmetic says (two CFG branches), the
chosen early-beam particle is the unstopped run of its seed, re-noised branches replay exactly."""

import pytest
import torch

pytest.importorskip("diffusers")

from steplens.presets import resolve  # noqa: E402
from steplens.backends.wan import WanPipelineModel  # noqa: E402
from builders import warm_verifier  # noqa: E402
from steplens.methods.ensemble import member_seeds  # noqa: E402
from steplens.methods.search import SearchConfig, _renoise_hooks, search  # noqa: E402
from steplens.tasks import get_task, register_verifier  # noqa: E402

torch.set_num_threads(1)
STEPS, CFG = 4, 5.0


register_verifier("test-warm", warm_verifier("test-warm"))  # a plug-in verifier: the redder, the better


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
@pytest.mark.parametrize("c, per_sample", [
    (dict(method="best-of-n", n=2), 2 * STEPS),
    (dict(method="early-beam", n=3, k=1, m=1), 3 * 2 + 1 * (STEPS - 2)),
    (dict(method="early-beam", n=2, k=0, m=1, steps=[1]), 2 * 1 + 2 * 1 + 1 * (STEPS - 2)),
    (dict(method="smc", n=2, steps=[1], lam=50.0), 2 * STEPS),
    (dict(method="chain", n=1, links=2, verifier="task"), 2 * 1 * STEPS),
])
def test_each_method_runs_on_wan22(pipes, scheduler, c, per_sample):
    model = WanPipelineModel(pipes("wan22", scheduler))
    b = [get_task("maze").sample(1, 3, 3)]
    cfg = SearchConfig(**{"verifier": "test-warm", **c})
    res = search(model, b, [7], cfg, sampling=resolve(model, steps=STEPS, guidance=CFG))
    assert res.nfe.nfe == per_sample * 2  # two CFG branches per step
    assert res.latents.shape[0] == 1 and torch.isfinite(res.latents).all()
    if c["method"] == "early-beam" and not c.get("steps"):
        seed = member_seeds([7], c["n"])[res.chosen[0]]
        alone = model.generate(b, [seed], sampling=resolve(model, steps=STEPS, guidance=CFG))
        torch.testing.assert_close(res.latents, alone, rtol=0, atol=1e-5)
    for j, p in enumerate(res.survivors if c["method"] in ("smc", "early-beam") else []):
        h = _renoise_hooks(model, [p], STEPS)
        if h is None:
            fresh = model.generate(b, [p.seed], sampling=resolve(model, steps=STEPS, guidance=CFG))
        else:
            with h:
                fresh = model.generate(b, [p.seed], sampling=resolve(model, steps=STEPS, guidance=CFG), hooks=h)
        torch.testing.assert_close(res.finals[0][j], fresh[0], rtol=0, atol=1e-5)
    for module in model.modules().values():
        assert "forward" not in vars(module)
