"""steplens.tape on real tiny diffusers Wan2.2 pipelines (two experts, CFG on), FlowMatch Euler and UniPC (a
scheduler with history): a run replaying the clean run's prefix is bit-identical to recomputing it; NFE counts each
CFG branch and the expert that ran; a stopped run continues from its tape to the unstopped result."""

import pytest
import torch

pytest.importorskip("diffusers")

from steplens.presets import resolve  # noqa: E402
from steplens.backends.wan import WanPipelineModel  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402
from steplens.tape import ForwardTape, forwards, run_until  # noqa: E402
from steplens.tasks import get_task  # noqa: E402

torch.set_num_threads(1)
STEPS, CFG = 4, 5.0


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_replay_is_bit_identical_on_wan22(pipes, scheduler):
    model = WanPipelineModel(pipes("wan22", scheduler))
    s = get_task("maze").sample(1, 3, 3)
    b, seeds = [s, s], [7, 8]
    tape = ForwardTape()
    with forwards(model, record=tape) as c:
        clean = model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG))
    assert c.nfe == STEPS * 2 * 2  # 2 samples x 2 CFG branches (two calls) per step, one expert each step
    assert sorted(tape.outputs) == [(k, n) for k in range(STEPS) for n in range(2)]
    for k in (1, 2, 3):
        def hooks(k=k):
            return Hooks(model, STEPS).edit("latent", steps=[k], fn=lambda x, ctx: torch.randn(
                x.shape, generator=torch.Generator().manual_seed(3)).to(x))
        with hooks() as h, forwards(model, replay=tape, upto=k) as c:
            reused = model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG), hooks=h)
        with hooks() as h:
            fresh = model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG), hooks=h)
        assert torch.equal(reused, fresh) and not torch.equal(fresh, clean)
        assert (c.nfe, c.replayed) == (4 * (STEPS - k), 4 * k)
    # stopped before step 2, continued from the tape: the unstopped run, bit for bit
    part = ForwardTape(batch=2)
    with forwards(model, record=part, stop_before=2):
        assert run_until(lambda: model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG))) is None
    with forwards(model, replay=part, upto=2):
        assert torch.equal(model.generate(b, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG)), clean)
    for module in model.modules().values():
        assert "forward" not in vars(module)
