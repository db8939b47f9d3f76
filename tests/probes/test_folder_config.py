"""A probe's folder configuration (its results store's identity) holds every setting as the settings say it: where
one of the probe's options takes a setting's name (the noise, energy and swap probes' `steps`, the steps they act at),
the setting is kept under `settings`; the check made before the model loads compares the settings with it."""

import pytest

from steplens.models.load import load_model
from steplens.probes import probes
from steplens.probes.base import ProbeBase, ProbeSettings, load_samples
from steplens.probes.contract import ProbeRun


@pytest.mark.parametrize("probe", [p for p in probes() if isinstance(p, ProbeBase)], ids=lambda p: p.name)
def test_every_setting_is_in_a_probes_folder_configuration(probe, tmp_path):
    model = load_model("tiny-maze")
    settings = ProbeSettings(count=1, size=3, frames=2, steps=2, task=probe.default_task()).for_model(model)
    r = ProbeRun(model, tmp_path, settings, probe.options(model, settings))
    r.samples = load_samples(model, settings)
    probe.prepare(r)
    r.conditions = probe.conditions(r)
    config, described, own = probe.folder_config(r), settings.describe(), probe.config(r)
    assert {k: {**config, **config.get("settings", {})}[k] for k in described} == described
    assert {k: config[k] for k in own} == own
    assert set(config.get("settings", {})) == set(own) & set(described)
    assert config["model"] == "tiny-maze" and config["weights_sha256"]
