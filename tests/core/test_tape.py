"""steplens.tape on the embedded model (real tiny network, no mocks): NFE counted per sample and CFG branch; a run
that replays a recorded prefix is bit-identical to recomputing it; a run stopped before step k continues from its
tape to the very result of an unstopped run; select/concat keep each sample's rows."""

import pytest
import torch

from steplens.presets import resolve
from steplens.hooks import Hooks
from steplens.tape import ForwardTape, NFECounter, StoppedAt, forwards, run_until
from steplens.tasks import get_task

STEPS = 6


def samples(n=3):
    return [get_task("maze").sample(i, 3, 3) for i in range(n)]


def noise_at(model, k):
    return Hooks(model, STEPS).edit("latent", steps=[k], fn=lambda x, ctx: torch.randn(x.shape, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_nfe_counts_samples_and_cfg_branches(tiny_model, guidance):
    b = samples(2)
    with forwards(tiny_model) as c:
        tiny_model.generate(b, [1, 2], sampling=resolve(tiny_model, steps=STEPS, guidance=guidance))
    assert c.nfe == STEPS * 2 * (2 if guidance != 1.0 else 1) and c.replayed == 0
    assert tiny_model.modules()[None].__dict__.get("forward") is None  # put back


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_replayed_prefix_is_bit_identical(tiny_model, k, guidance):
    b, seeds = samples(), [4, 5, 6]
    tape, counter = ForwardTape(), NFECounter()
    with forwards(tiny_model, record=tape, counter=counter):
        clean = tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS, guidance=guidance))
    with noise_at(tiny_model, k) as h, forwards(tiny_model, replay=tape, upto=k, counter=counter) as c:
        reused = tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS, guidance=guidance), hooks=h)
    with noise_at(tiny_model, k) as h:
        fresh = tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS, guidance=guidance), hooks=h)
    assert torch.equal(reused, fresh) and not torch.equal(fresh, clean)
    per = 3 * (2 if guidance != 1.0 else 1)
    assert (c.nfe, c.replayed) == (per * (2 * STEPS - k), per * k)  # clean run + the branch's own steps
    assert c.as_dict() == {"nfe": c.nfe, "nfe_without_reuse": per * 2 * STEPS}


def test_a_stopped_run_continues_from_its_tape(tiny_model):
    b, seeds, k = samples(), [4, 5, 6], 3
    x0 = {}
    tape = ForwardTape(batch=3)
    with forwards(tiny_model, record=tape, stop_before=k) as c:
        got = run_until(lambda: tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS),
                                                    callback=lambda st: x0.__setitem__(st.i, st.x0)))
    assert got is None and sorted(x0) == list(range(k)) and tape.steps == list(range(k)) and c.nfe == 3 * k
    with pytest.raises(StoppedAt):
        with forwards(tiny_model, stop_before=1):
            tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS))
    full = tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS))
    with forwards(tiny_model, replay=tape, upto=k) as c:
        cont = tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS))
    assert torch.equal(cont, full) and (c.nfe, c.replayed) == (3 * (STEPS - k), 3 * k)
    # the particles a search keeps: rows 2 and 0, continued alone
    with forwards(tiny_model, replay=tape.select([2, 0]), upto=k):
        kept = tiny_model.generate([b[2], b[0]], [6, 4], sampling=resolve(tiny_model, steps=STEPS))
    torch.testing.assert_close(kept, full[[2, 0]], rtol=0, atol=1e-5)  # only the batch size differs after k
    both = ForwardTape.concat([tape.select([1]), tape.select([0])])
    with forwards(tiny_model, replay=both, upto=k):
        again = tiny_model.generate([b[1], b[0]], [5, 4], sampling=resolve(tiny_model, steps=STEPS))
    torch.testing.assert_close(again, full[[1, 0]], rtol=0, atol=1e-5)


def test_bad_use_is_named(tiny_model):
    b = samples(1)
    with pytest.raises(ValueError, match="upto=2 without a tape"):
        with forwards(tiny_model, upto=2):
            pass
    with pytest.raises(RuntimeError, match="holds no output for call 0 of step 0"):
        with forwards(tiny_model, replay=ForwardTape(), upto=2):
            tiny_model.generate(b, [1], sampling=resolve(tiny_model, steps=STEPS))
    with pytest.raises(ValueError, match="outside the recorded batch of 1"):
        ForwardTape(batch=1).select([1])
