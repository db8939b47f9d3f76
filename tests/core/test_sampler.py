import pytest
import torch

from steplens.presets import resolve
from steplens.sampling import flow_sigmas, initial_noise, sample_euler
from steplens.tasks import get_task


def test_flow_sigmas_endpoints_monotone_and_shift():
    s = flow_sigmas(10, shift=1.0)
    assert len(s) == 11 and s[0] == 1.0 and s[-1] == 0.0
    assert torch.all(s[1:] < s[:-1])
    shifted = flow_sigmas(10, shift=3.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0
    assert torch.all(shifted[1:-1] > s[1:-1])  # shift > 1 spends more steps at high noise
    t = 0.5
    assert shifted[5].item() == pytest.approx(3 * t / (1 + 2 * t))


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_step_count_below_one_is_refused(bad):
    with pytest.raises(ValueError, match=f"got {bad}"):
        flow_sigmas(bad)


def _run(model, seeds, steps=4, callback=None, **kw):
    samples = [get_task("maze").sample(s, 3, 3) for s in seeds]
    return model.generate(samples, seeds, sampling=resolve(model, steps=steps, **kw), callback=callback)


def test_last_x0_equals_output(tiny_model):
    seen = []
    out = _run(tiny_model, [1, 2], steps=5, callback=lambda info: seen.append(info))
    assert [i.i for i in seen] == list(range(5))
    assert seen[-1].sigma_next == 0.0
    assert torch.equal(seen[-1].x0, out)
    # x0_hat = x_s - sigma v at every step
    for info in seen:
        assert torch.equal(info.x0, info.x - info.sigma * info.v)


def test_seed_determinism_bit_identical(tiny_model):
    a = _run(tiny_model, [7, 8])
    b = _run(tiny_model, [7, 8])
    c = _run(tiny_model, [9, 8])
    assert torch.equal(a, b)
    assert not torch.equal(a[0], c[0])


def test_initial_noise_per_sample_seed():
    x = initial_noise((3, 2, 2, 4, 4), [5, 6, 5])
    assert torch.equal(x[0], x[2]) and not torch.equal(x[0], x[1])
    with pytest.raises(ValueError, match="2 seeds given for a batch of 3"):
        initial_noise((3, 2, 2, 4, 4), [1, 2])


def test_nan_latent_is_refused(tiny_model):
    samples = [get_task("maze").sample(0, 3, 3)]
    cond = tiny_model.condition(samples)
    x = torch.zeros(tiny_model.latent_shape(samples, 3))
    x[0, 0, 1, 2, 2] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN"):
        sample_euler(tiny_model, x, flow_sigmas(3), cond)


def test_guidance_one_equals_plain_and_guidance_changes_output(tiny_model):
    plain = _run(tiny_model, [3])
    g1 = _run(tiny_model, [3], guidance=1.0)
    g4 = _run(tiny_model, [3], guidance=4.0)
    assert torch.equal(plain, g1)
    assert not torch.allclose(plain, g4)
