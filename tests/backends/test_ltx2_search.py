"""Search methods on the tiny LTX-2 pipeline (its denoiser named through a BlockView: `blocks` = transformer_blocks):
the tape must count, stop and replay the transformer the pipeline runs, not the naming view."""

import pytest
import torch

pytest.importorskip("diffusers")

from steplens.presets import resolve  # noqa: E402
from steplens.backends.ltx2 import LTX2PipelineModel  # noqa: E402
from steplens.backends.ltx2.tiny import tiny_ltx2_i2v  # noqa: E402
from builders import warm_verifier  # noqa: E402
from steplens.methods.ensemble import member_seeds  # noqa: E402
from steplens.methods.search import SearchConfig, search  # noqa: E402
from steplens.tape import ForwardTape, forwards, run_until  # noqa: E402
from steplens.tasks import get_task, register_verifier  # noqa: E402

torch.set_num_threads(1)
STEPS, CFG = 4, 3.0


register_verifier("test-warm-ltx", warm_verifier("test-warm-ltx", accept=None))


@pytest.fixture(scope="module")
def model():
    return LTX2PipelineModel(tiny_ltx2_i2v(seed=0))


def test_the_tape_counts_stops_and_replays_ltx2(model):
    b, seeds = [get_task("maze").sample(1, 3, 3)] * 2, [7, 8]
    with forwards(model) as c:
        clean = model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG))
    assert c.nfe == STEPS * 2 * 2  # 2 samples x 2 CFG branches
    tape = ForwardTape(batch=2)
    with forwards(model, record=tape, stop_before=2):
        assert run_until(lambda: model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG))) is None
    with forwards(model, replay=tape, upto=2) as c:
        assert torch.equal(model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG)), clean)
    assert (c.nfe, c.replayed) == (2 * 2 * (STEPS - 2), 2 * 2 * 2)


@pytest.mark.parametrize("c, per_sample", [
    (dict(method="best-of-n", n=2), 2 * STEPS),
    (dict(method="early-beam", n=3, k=1, m=1), 3 * 2 + 1 * (STEPS - 2)),
    (dict(method="smc", n=2, steps=[1], lam=50.0), 2 * STEPS),
])
def test_each_method_runs_on_ltx2(model, c, per_sample):
    b = [get_task("maze").sample(1, 3, 3)]
    res = search(model, b, [7], SearchConfig(verifier="test-warm-ltx", **c), sampling=resolve(model, steps=STEPS, guidance=CFG))
    assert res.nfe.nfe == per_sample * 2 and torch.isfinite(res.latents).all()
    if c["method"] == "early-beam":
        seed = member_seeds([7], c["n"])[res.chosen[0]]
        torch.testing.assert_close(res.latents, model.generate(b, [seed], sampling=resolve(model, steps=STEPS, guidance=CFG)), rtol=0,
                                   atol=1e-5)
