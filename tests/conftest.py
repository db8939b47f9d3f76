import os
import sys

# A pytest-xdist worker (and every torchrun/Ray child it starts) inherits COLUMNS from xdist's gateway: the CLI's
# consoles would take it as their width and wrap the lines and table rows the tests read. Without it, a console
# writing to a pipe or file is wide (steplens.cli.app.LOG_WIDTH), as in a one-process run.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

import pytest
import torch

pytest.register_assert_rewrite("backend_mixin", "families")  # tests/backends' shared tests explain a failure too

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
    from steplens.backends.wan.tiny import tiny_wan21_i2v, tiny_wan22_i2v

    builders = {"wan22": tiny_wan22_i2v, "wan21": tiny_wan21_i2v}
    cache = {}

    def get(model, scheduler="euler"):
        if (model, scheduler) not in cache:
            pipe = builders[model](seed=0, scheduler=scheduler)
            pipe.set_progress_bar_config(disable=True)
            cache[model, scheduler] = pipe
        return cache[model, scheduler]

    return get


@pytest.fixture(scope="session")
def family_pipes():
    """family_pipes(families.X()): that diffusers family's tiny offline pipeline (tests/backends/families.py), built
    once per test run: the shared backend tests (backend_mixin) and the family's own tests run on the same one, and
    every test leaves it as it found it."""
    cache = {}

    def get(family):
        name = type(family).__name__
        if name not in cache:
            pipe = family.build(seed=0)
            pipe.set_progress_bar_config(disable=True)
            cache[name] = pipe
        return cache[name]
    return get


@pytest.fixture
def loads(monkeypatch):
    """The model loads of the commands a test invokes, counted (the real loader runs): a refusal made before loading
    leaves it as it was."""
    import steplens.models.load as model_load

    calls = []
    real = model_load.load_model

    def counted(*a, **kw):
        calls.append(a[0] if a else kw.get("spec"))
        return real(*a, **kw)
    monkeypatch.setattr(model_load, "load_model", counted)
    return calls


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it), for a torchrun rendezvous."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def torchrun():
    """torchrun(*args, nproc=2): `python -m torch.distributed.run` on a free port, one thread per process."""
    import os
    import subprocess
    import sys

    def launch(*args, nproc: int = 2, timeout: int = 300):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
               "127.0.0.1", "--master-port", str(free_port()), *[str(a) for a in args]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    return launch


def pytest_collection_modifyitems(config, items):
    """Tiers: `distributed` (torchrun processes), `wan` (the diffusers backends: tests/backends/); `slow` is marked per
    test. Under pytest-xdist (`make test`: -n, --dist loadfile) a test module runs whole on one worker: the docs tests
    beside their one site build, a module's Ray tests on its one cluster (loadgroup's `xdist_group` marks are not
    used: pytest-xdist 3.8 renames a grouped test through a node attribute pytest 9 no longer reads, so the groups
    were silently ignored)."""
    for item in items:
        name = item.fspath.basename
        fixtures = getattr(item, "fixturenames", ())
        if "torchrun" in fixtures or "distributed" in name:
            item.add_marker(pytest.mark.distributed)
        if item.path.parent.name == "backends" or name.startswith("test_wan_") or "wan" in item.name:
            item.add_marker(pytest.mark.wan)


@pytest.fixture
def evalkit(tmp_path, monkeypatch):
    """A stand-in VBVR-EvalKit package (tests/builders.py: make_evalkit) importable as `vbvr_bench` for one test; its
    evaluators module."""
    from builders import make_evalkit

    site = tmp_path / "site"
    make_evalkit(site)
    monkeypatch.syspath_prepend(str(site))
    for m in [m for m in sys.modules if m.startswith("vbvr_bench")]:
        monkeypatch.delitem(sys.modules, m)
    import vbvr_bench.evaluators as ev

    yield ev
    for m in [m for m in sys.modules if m.startswith("vbvr_bench")]:
        del sys.modules[m]
