"""Every diffusers backend's model implements the model contract (steplens.contract), on the tiny offline builders,
and the registry finds each backend by the pipeline class it loads."""

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from steplens.backends import backend_for, backends  # noqa: E402
from steplens.backends.ltx2 import LTX2PipelineModel  # noqa: E402
from steplens.backends.ltx2.tiny import tiny_ltx2_i2v  # noqa: E402
from steplens.backends.wan import WanPipelineModel, WanTransformerModel  # noqa: E402
from steplens.backends.wan.tiny import tiny_wan21_i2v, tiny_wan22_i2v, tiny_wan22_ti2v  # noqa: E402
from steplens.contract import VideoModel, check_model  # noqa: E402

pytestmark = pytest.mark.wan
BUILDERS = {"wan21": tiny_wan21_i2v, "wan22": tiny_wan22_i2v, "ti2v": tiny_wan22_ti2v, "ltx2": tiny_ltx2_i2v}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_every_pipeline_model_passes_the_contract(family):
    pipe = BUILDERS[family](seed=0)
    model = backend_for(pipe)(pipe)
    assert type(model) is (LTX2PipelineModel if family == "ltx2" else WanPipelineModel)
    check_model(model)
    assert isinstance(model, VideoModel) and model.is_pipeline
    assert model.has_two_experts == (family == "wan22") and model.experts == list(model.modules())
    assert set(model.sampling_defaults()) >= {"steps", "shift", "guidance"}
    assert model.sampling_options <= {"scheduler", "boundary", "negative_prompt", "height", "width", "size"}
    if family != "ltx2":
        check_model(WanTransformerModel(model))


def test_the_registry_knows_each_backend_by_its_pipeline_class():
    known = backends()
    assert {"WanImageToVideoPipeline": WanPipelineModel, "LTX2ImageToVideoPipeline": LTX2PipelineModel}.items() \
        <= known.items()
    with pytest.raises(TypeError, match="does not trace the pipeline class object; supported: .*"
                                        "LTX2ImageToVideoPipeline.*WanImageToVideoPipeline"):
        backend_for(object())
