"""Frame-prefix conditioning on the embedded model: K clean leading frames, K = 1 unchanged bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steplens.presets import resolve
from steplens.models import BorderCodec, DiTConfig, VideoDiT
from steplens.models.dit import DiTCond
from steplens.training.train import TrainConfig, draw_batch


def _net():
    torch.manual_seed(0)
    net = VideoDiT(DiTConfig(dim=32, depth=2, heads=2, text_dim=16, freq_dim=32))
    for p in net.parameters():  # adaLN-zero starts at zero velocity: give every weight a value
        torch.nn.init.normal_(p, std=0.05)
    return net.eval()


def test_k1_as_a_prefix_equals_the_first_frame_alone():
    net = _net()
    x = torch.randn(2, 3, 4, 6, 6)
    first = torch.randn(2, 3, 6, 6)
    ids = torch.randint(1, 10, (2, 5))
    a = net(x, torch.tensor([0.5, 0.7]), DiTCond(first, ids))
    b = net(x, torch.tensor([0.5, 0.7]), DiTCond(first, ids, first[:, :, None]))
    assert torch.equal(a, b)


def test_more_known_frames_change_the_velocity_and_all_frames_known_is_refused():
    net = _net()
    x = torch.randn(1, 3, 4, 6, 6)
    frames = torch.randn(1, 3, 3, 6, 6)
    ids = torch.randint(1, 10, (1, 5))
    one = net(x, 0.5, DiTCond(frames[:, :, 0], ids))
    two = net(x, 0.5, DiTCond(frames[:, :, 0], ids, frames[:, :, :2]))
    assert not torch.allclose(one, two)
    with pytest.raises(ValueError, match="4 known frames leave nothing to generate"):
        net(x, 0.5, DiTCond(frames[:, :, 0], ids, torch.randn(1, 3, 4, 6, 6)))
    cond = DiTCond(frames[:, :, 0], ids, frames[:, :, :2])
    assert cond.repeat(3).prefix.shape[0] == 3 and cond.null_prompt().prefix is cond.prefix
    assert cond.cat(cond).prefix.shape[0] == 2


def test_a_k1_config_draws_the_batches_it_drew_before_prefix_existed_and_k_is_drawn_below_the_frames():
    base = TrainConfig(tasks={"maze": 1.0}, sizes={3: 1.0}, frames={3: 1.0}, batch=2)
    with_k = base.model_copy(update={"prefix": {1: 0.5, 2: 0.5, 4: 1.0}})
    codec = BorderCodec()
    ks = set()
    for step in range(12):
        x0, eps, sigma, cond = draw_batch(base, step, codec)
        assert cond.prefix is None
        x0k, epsk, sigmak, condk = draw_batch(with_k, step, codec)
        assert torch.equal(x0, x0k) and torch.equal(eps, epsk) and torch.equal(sigma, sigmak)
        k = 1 if condk.prefix is None else condk.prefix.shape[2]
        ks.add(k)
        if k > 1:  # the leading frames are the ground truth's own
            assert torch.equal(condk.prefix, x0[:, :, :k])
    assert ks == {1, 2}  # K = 4 never fits a 3-frame video


def test_bad_prefix_weights_are_named():
    with pytest.raises(ValueError, match="prefix"):
        TrainConfig(prefix={2: 1.0})
    with pytest.raises(ValueError, match="prefix"):
        TrainConfig(prefix={0: 1.0, 1: 1.0})


def test_continue_from_frames_needs_nothing_from_the_task_and_refuses_what_cannot_be():
    from steplens.tasks import continue_from_frames, draw, get_task

    for family in ("reappear", "symmetry"):
        s = draw(get_task(family), 1, "test", frames=4)
        big = s.ground_truth.repeat(3, 1).repeat(3, 2)  # an integer upscale, as `steplens run` writes
        two = continue_from_frames(s, big, 2)
        assert two.known_frames == 2 and np.array_equal(two.prefix, s.ground_truth[:2])
        assert two.ground_truth is s.ground_truth and two.meta["prefix_frames"] == 2
        assert continue_from_frames(s, big, 1).prefix is None
        with pytest.raises(ValueError, match="k = 4: .* has 4 frames"):
            continue_from_frames(s, big, 4)
        with pytest.raises(ValueError, match="not .* or an integer upscale"):
            continue_from_frames(s, big[:, :-1], 2)


def test_a_model_trained_on_first_frames_only_refuses_k_frames_and_says_why(tiny_model):
    from steplens.tasks import continue_from_frames, draw, get_task

    s = draw(get_task("maze"), 0, "test", 3, 4)
    two = continue_from_frames(s, s.ground_truth, 2)
    with pytest.raises(ValueError, match="trained on first frames only"):
        tiny_model.generate([two], [0], sampling=resolve(tiny_model, steps=2))
    tiny_model.info = {**tiny_model.info, "train_config": {"prefix": {"1": 0.5, "2": 0.5}}}
    a = tiny_model.generate([s], [0], sampling=resolve(tiny_model, steps=2))
    b = tiny_model.generate([two], [0], sampling=resolve(tiny_model, steps=2))
    assert a.shape == b.shape and not torch.equal(a, b)


def test_the_shipped_frame_prefix_model_keeps_the_frames_it_is_given_and_continues_them():
    """tiny-reasoner-frames (issue 35) takes K leading frames; tiny-reasoner refuses them. Given the ground truth's
    first K frames, its video starts with those frames (redrawn), and with K = 3 of 4 maze frames it draws the answer on most
    held-out mazes (the frames before the last already hold most of the path)."""
    from steplens.models.load import load_model
    from steplens.tasks import Scorers, continue_from_frames, draw, get_task
    from steplens.experiments.evaluate import generate_and_score

    frames_model, base = load_model("tiny-reasoner-frames"), load_model("tiny-reasoner")
    assert frames_model.prefix_trained >= 3 and base.prefix_trained == 1
    task = get_task("maze")
    samples = [draw(task, s, "test", 4, 4, idx=s) for s in range(8)]
    given = [continue_from_frames(s, s.ground_truth, 3) for s in samples]
    with pytest.raises(ValueError, match="e.g. tiny-reasoner-frames"):
        base.generate(given[:1], [0], sampling=resolve(base, steps=2))
    lat, rows = generate_and_score(frames_model, given, Scorers(), sampling=resolve(frames_model, steps=10))
    from steplens.io.video import to_uint8

    for s, v in zip(given, frames_model.decode(lat)):
        err = np.abs(to_uint8(v)[:3].astype(int) - s.prefix.astype(int))
        # conditioned, not pasted: the model redraws the given frames, as it redraws the first frame at K = 1 (a few
        # levels off, no pixel changing colour)
        assert err.max() <= 40 and err.mean() <= 3, (s.name, err.max(), err.mean())
    assert sum(r["success"] for r in rows) >= 5, rows


def test_the_shipped_frame_prefix_model_is_tiny_reasoner_bit_for_bit_given_the_first_frame():
    """tiny-reasoner-frames is a LoRA on tiny-reasoner switched on only when given K > 1 frames (issue 35's bar: K = 1
    within a point of tiny-reasoner): given the first frame alone it generates tiny-reasoner's latents exactly, on
    every family; given two frames it is another model."""
    from steplens.models.load import load_model
    from steplens.tasks import continue_from_frames, draw, get_task

    frames_model, base = load_model("tiny-reasoner-frames"), load_model("tiny-reasoner")
    for family in ("maze", "tictactoe", "symmetry-open"):
        samples = [draw(get_task(family), s, "test", idx=s) for s in range(2)]
        a = base.generate(samples, [0, 1], sampling=resolve(base, steps=3))
        b = frames_model.generate(samples, [0, 1], sampling=resolve(frames_model, steps=3))
        assert torch.equal(a, b), family
    lora = {k: v for k, v in frames_model.net.state_dict().items() if ".lora_B." in k}
    assert lora and all(v.abs().max() > 0 for v in lora.values())  # an adapter that learnt (B starts at zero)
    given = [continue_from_frames(s, s.ground_truth, 2) for s in samples]
    assert frames_model.generate(given, [0, 1], sampling=resolve(frames_model, steps=3)).shape == a.shape
