"""The ensemble with its seeds split over 2 CPU processes (torchrun, gloo) equals the batched ensemble."""


import pytest
import torch
from conftest import random_net
from safetensors.torch import load_file

from steplens.presets import resolve
from steplens.methods.ensemble import EnsembleConfig, generate_ensemble
from steplens.models.load import load_model
from steplens.models.weights import save_weights

SCRIPT = """
import sys, torch, torch.distributed as dist
from safetensors.torch import save_file
from steplens.methods.ensemble import EnsembleConfig, generate_ensemble_distributed
from steplens.models.load import load_model
from steplens.presets import resolve
from steplens.tasks import get_task
torch.set_num_threads(1)
dist.init_process_group("gloo")
model = load_model(sys.argv[1])
samples = [get_task("maze").sample(s, 3, 3) for s in (0, 1)]
n = int(sys.argv[3])
try:
    lat = generate_ensemble_distributed(model, samples, [0, 1], EnsembleConfig(n_seeds=n, target=sys.argv[4]),
                                        resolve(model, steps=4))
except ValueError as e:
    print("ERROR", e); sys.exit(3)
if dist.get_rank() == 0:
    save_file({"lat": lat}, sys.argv[2])
dist.destroy_process_group()
"""


def _launch(torchrun, tmp_path, weights, n, target):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"out-{n}-{target}.safetensors"
    return torchrun(script, weights, out, n, target), out


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    net = random_net(0)
    save_weights(path, net, net.cfg.to_dict(), dtype=torch.float32)
    return path


@pytest.mark.parametrize("target", ["block", "update"])
def test_distributed_ensemble_equals_batched(torchrun, tmp_path, weights, target):
    r, out = _launch(torchrun, tmp_path, weights, 4, target)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    model = load_model(str(weights))
    from steplens.tasks import get_task

    samples = [get_task("maze").sample(s, 3, 3) for s in (0, 1)]
    batched = generate_ensemble(model, samples, [0, 1], EnsembleConfig(n_seeds=4, target=target), sampling=resolve(model, steps=4))
    torch.testing.assert_close(load_file(out)["lat"], batched, rtol=1e-5, atol=1e-5)


def test_world_size_must_divide_n(torchrun, tmp_path, weights):
    r, _ = _launch(torchrun, tmp_path, weights, 3, "block")
    assert r.returncode != 0 and "world size 2 does not divide n_seeds=3" in r.stdout, r.stdout + r.stderr[-1000:]
