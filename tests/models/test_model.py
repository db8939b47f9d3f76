import pytest
import torch

from steplens.models import DiTCond, get_arch
from steplens.models.prompt import encode_prompts
from conftest import random_net


@pytest.mark.parametrize("shape", [(2, 3, 1, 6, 6), (1, 3, 4, 10, 10), (2, 3, 3, 7, 9)])
def test_velocity_shape_matches_input(shape):
    net = random_net(1)
    b, c, t, h, w = shape
    cond = DiTCond(torch.rand(b, c, h, w) * 2 - 1, encode_prompts(["draw the path"] * b))
    v = net.velocity(torch.randn(shape), torch.full((b,), 0.5), cond)
    assert v.shape == shape and torch.isfinite(v).all()


def test_blocks_addressable_by_stable_names():
    net = random_net(0)
    assert net.block_names == [f"blocks.{i}" for i in range(get_arch("test").depth)]
    for name in net.block_names:
        assert net.get_submodule(name) is net.blocks[int(name.split(".")[1])]


def test_first_frame_and_prompt_condition_the_velocity():
    net = random_net(2)
    x = torch.randn(1, 3, 3, 6, 6)
    f = torch.rand(1, 3, 6, 6) * 2 - 1
    base = DiTCond(f, encode_prompts(["green start"]))
    v = net(x, 0.7, base)
    assert not torch.allclose(v, net(x, 0.7, DiTCond(-f, base.prompt_ids)))
    assert not torch.allclose(v, net(x, 0.7, DiTCond(f, encode_prompts(["red goal"]))))
    assert not torch.allclose(v, net(x, 0.2, base))


def test_fresh_model_predicts_zero_velocity_adaln_zero():
    from steplens.models import VideoDiT

    net = VideoDiT(get_arch("test"))
    cond = DiTCond(torch.zeros(1, 3, 6, 6), encode_prompts(["x"]))
    assert torch.count_nonzero(net(torch.randn(1, 3, 2, 6, 6), 0.5, cond)) == 0


def test_wrong_channels_and_unknown_arch_are_refused():
    net = random_net(0)
    with pytest.raises(ValueError, match="4 channels, the model takes 3"):
        net(torch.randn(1, 4, 2, 6, 6), 0.5, DiTCond(torch.zeros(1, 4, 6, 6), encode_prompts(["x"])))
    with pytest.raises(ValueError, match="unknown model architecture 'huge'.*tiny-maze"):
        get_arch("huge")


def test_prompt_too_long_is_refused():
    with pytest.raises(ValueError, match="at most 24"):
        encode_prompts([" ".join(["maze"] * 30)])
