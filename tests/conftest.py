import pytest
import torch

from steplens.models import VideoDiT, get_arch
from steplens.models.wrap import EmbeddedModel

torch.set_num_threads(1)


def random_net(seed: int = 0, arch: str = "test") -> VideoDiT:
    """A tiny untrained model whose zero-initialised layers are randomised, so v is not trivially 0."""
    torch.manual_seed(seed)
    net = VideoDiT(get_arch(arch))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if not p.abs().sum():
                p.normal_(0, 0.2)
    return net.eval()


@pytest.fixture
def tiny_model() -> EmbeddedModel:
    return EmbeddedModel(random_net(0), name="test")


@pytest.fixture(scope="module")
def pipes():
    """Tiny offline Wan pipelines, built once per module: pipes("wan22" | "wan21", "euler" | "unipc")."""
    from steplens.wan.tiny import tiny_wan21_i2v, tiny_wan22_i2v

    builders = {"wan22": tiny_wan22_i2v, "wan21": tiny_wan21_i2v}
    cache = {}

    def get(model, scheduler="euler"):
        if (model, scheduler) not in cache:
            pipe = builders[model](seed=0, scheduler=scheduler)
            pipe.set_progress_bar_config(disable=True)
            cache[model, scheduler] = pipe
        return cache[model, scheduler]

    return get
