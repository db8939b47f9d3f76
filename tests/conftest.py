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
