"""A probe's `option_fields` name exactly the settings its own options take the names of in its folder's
configuration (ProbeBase.run: the settings, then the probe's config, then the model's identity): the fields the
check made before the model loads compares with the settings a finished run recorded instead of with the store."""

import pytest

from steplens.models.load import load_model
from steplens.probes import probes
from steplens.probes.base import ProbeBase, ProbeSettings, load_samples
from steplens.probes.contract import ProbeRun


@pytest.mark.parametrize("probe", [p for p in probes() if isinstance(p, ProbeBase)], ids=lambda p: p.name)
def test_option_fields_are_the_settings_a_probes_options_shadow(probe, tmp_path):
    model = load_model("tiny-maze")
    settings = ProbeSettings(count=1, size=3, frames=2, steps=2, task=probe.default_task()).for_model(model)
    r = ProbeRun(model, tmp_path, settings, probe.options(model, settings))
    r.samples = load_samples(model, settings)
    probe.prepare(r)
    r.conditions = probe.conditions(r)
    assert set(probe.config(r)) & set(settings.describe()) == set(probe.option_fields)
