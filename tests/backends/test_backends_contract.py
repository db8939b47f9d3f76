"""Every diffusers backend's model implements the model contract (steplens.contract), on the tiny offline builders,
and the registry finds each backend by the pipeline class it loads."""

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from steplens.backends import backend_for, backends  # noqa: E402
from steplens.backends.hunyuan15 import HunyuanVideo15Model  # noqa: E402
from steplens.backends.ltx2 import LTX2PipelineModel  # noqa: E402
from steplens.backends.ltx2.tiny import tiny_ltx2_i2v  # noqa: E402
from steplens.backends.tiny.hunyuan15 import tiny_hunyuan15_i2v  # noqa: E402
from steplens.backends.wan import WanPipelineModel, WanTransformerModel  # noqa: E402
from steplens.backends.wan.tiny import tiny_wan21_i2v, tiny_wan22_i2v, tiny_wan22_ti2v  # noqa: E402
from steplens.contract import VideoModel, check_model  # noqa: E402

pytestmark = pytest.mark.wan
BUILDERS = {"wan21": tiny_wan21_i2v, "wan22": tiny_wan22_i2v, "ti2v": tiny_wan22_ti2v, "ltx2": tiny_ltx2_i2v,
            "hunyuan15": tiny_hunyuan15_i2v}
MODELS = {"ltx2": LTX2PipelineModel, "hunyuan15": HunyuanVideo15Model}  # the others: WanPipelineModel
WAN = {"wan21", "wan22", "ti2v"}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_every_pipeline_model_passes_the_contract(family):
    pipe = BUILDERS[family](seed=0)
    model = backend_for(pipe)(pipe)
    assert type(model) is MODELS.get(family, WanPipelineModel)
    check_model(model)
    assert isinstance(model, VideoModel) and model.is_pipeline
    assert model.has_two_experts == (family == "wan22") and model.experts == list(model.modules())
    assert set(model.sampling_defaults()) >= {"steps", "shift", "guidance"}
    assert model.sampling_options <= {"scheduler", "boundary", "negative_prompt", "height", "width", "size", "sigmas"}
    if family in WAN:
        check_model(WanTransformerModel(model))
    if family == "hunyuan15":  # CFG through a guider component: its scale is the default
        assert model.sampling_defaults()["guidance"] == pipe.guider.guidance_scale


def test_the_registry_knows_each_backend_by_its_pipeline_class():
    known = backends()
    assert {"WanImageToVideoPipeline": WanPipelineModel, "LTX2ImageToVideoPipeline": LTX2PipelineModel,
            "HunyuanVideo15ImageToVideoPipeline": HunyuanVideo15Model}.items() <= known.items()
    with pytest.raises(TypeError, match="does not trace the pipeline class object; supported: .*"
                                        "LTX2ImageToVideoPipeline.*WanImageToVideoPipeline"):
        backend_for(object())


def test_a_plugin_backend_registers_through_its_entry_point(tmp_path, monkeypatch):
    """Another package's backend: its model class, named by the `steplens.backends` entry-point group, is found by
    the pipeline class it loads (here a subclass of the Wan adapter for a made-up pipeline class)."""
    import textwrap

    from steplens.backends import registry

    monkeypatch.setattr(registry, "_BACKENDS", {})
    monkeypatch.setattr(registry, "_LOADED", False)
    (tmp_path / "myback.py").write_text(textwrap.dedent('''
        from diffusers import WanImageToVideoPipeline
        from steplens.backends.wan import WanPipelineModel

        class MyPipeline(WanImageToVideoPipeline):
            pass

        class MyModel(WanPipelineModel):
            backend, family, pipeline_classes = "mine", "Mine", ("MyPipeline",)
    '''))
    dist = tmp_path / "myback-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myback\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[steplens.backends]\nmine = myback:MyModel\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import myback

    known = registry.backends()
    assert known["MyPipeline"] is myback.MyModel and known["WanImageToVideoPipeline"] is WanPipelineModel
    pipe = myback.MyPipeline(**tiny_wan22_i2v(seed=0).components, boundary_ratio=0.875)
    assert registry.backend_for(pipe) is myback.MyModel  # its own class first, then a registered base class
    assert registry.backend_named("mine") is myback.MyModel


def test_a_folder_of_an_unknown_pipeline_class_is_refused_naming_the_supported_ones(tmp_path):
    import json

    from steplens.models.load import load_model

    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "CogVideoXImageToVideoPipeline"}))
    with pytest.raises(ValueError, match=r"diffusers:.* holds a CogVideoXImageToVideoPipeline; steplens' backends "
                                         r"load .*LTX2ImageToVideoPipeline.*WanImageToVideoPipeline"):
        load_model(f"diffusers:{tmp_path}")
    with pytest.raises(ValueError, match=r"holds a CogVideoXImageToVideoPipeline; steplens' Wan backend supports "
                                         r"WanImageToVideoPipeline .*; other backends load .*LTX2ImageToVideoPipeline"):
        load_model(f"wan:{tmp_path}")


def test_sampling_defaults_name_what_the_pipeline_lacks():
    """sampling_defaults reads the pipeline's __call__ defaults (CFG: or its guider component, see the HunyuanVideo-1.5
    tests); a pipeline without them is refused naming what is missing (not a KeyError)."""
    from diffusers import WanImageToVideoPipeline

    class NoDefaults(WanImageToVideoPipeline):
        def __call__(self, num_inference_steps, guidance_scale):
            raise NotImplementedError

    model = WanPipelineModel(NoDefaults(**tiny_wan22_i2v(seed=0).components, boundary_ratio=0.875))
    with pytest.raises(TypeError, match=r"NoDefaults.__call__ has no default num_inference_steps; steplens' Wan "):
        model.sampling_defaults()
    with pytest.raises(TypeError, match=r"NoDefaults.__call__ has no default guidance_scale"):
        model.default_guidance()


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_construction_reads_only_the_pipeline(family):
    """PipelineModel.__init__ calls nothing a subclass sets up (modules(), block_names): a subclass may set its own
    state after super().__init__; the default name is the pipeline class and its denoisers."""
    pipe = BUILDERS[family](seed=0)
    base = backend_for(pipe)

    class Late(base):
        def __init__(self, pipe, **kw):
            super().__init__(pipe, **kw)
            self.ready = True

        def modules(self):
            assert self.ready, "modules() called before the subclass set up"
            return super().modules()

    model = Late(pipe)
    assert model.block_names == [f"blocks.{i}" for i in range(len(model.block_names))] and model.block_names
    expected = {"ltx2": "LTX2ImageToVideoPipeline"}.get(family, f"{type(pipe).__name__}({'+'.join(model.modules())})")
    assert model.name == (pipe.name_or_path or expected)


def test_model_options_go_through_the_registry_and_unknown_ones_are_refused_before_weights_load(tmp_path):
    """load_pipeline_model passes the model's options to the backend the folder's class picks; an option that
    backend does not take is named (with the ones it takes) from model_index.json alone, before any weights load."""
    import json

    from steplens.backends import load_pipeline_model

    assert {"scale", "min_size", "negative_prompt"} <= set(WanPipelineModel.model_options())
    assert {"frame_rate", "image_crf"} <= set(LTX2PipelineModel.model_options()) and "info" not in \
        LTX2PipelineModel.model_options()
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "LTX2ImageToVideoPipeline"}))
    with pytest.raises(ValueError, match=r"model option 'glyph_length': not taken by steplens' LTX-2 backend "
                                         r"\(LTX2PipelineModel\); its options: audio_guidance, frame_rate, .*scale"):
        load_pipeline_model(f"wan:{tmp_path}", glyph_length=4)


def test_instance_patches_as_a_block_put_back_what_was_there():
    """`with InstancePatches((obj, attr, make_wrapper), ...)`: applied for the block, put back on exit, and put back
    too when one of them fails while being applied."""
    from steplens.backends.patches import InstancePatches

    class A:
        def f(self):
            return 1

    a = A()
    a.g = "own"
    with InstancePatches((a, "f", lambda f: lambda: f() + 1), (a, "g", lambda g: g + "!")):
        assert a.f() == 2 and a.g == "own!"
    assert "f" not in vars(a) and a.f() == 1 and a.g == "own"
    with pytest.raises(AttributeError), InstancePatches((a, "f", lambda f: lambda: 0), (a, "h", lambda h: h.upper())):
        pass  # not reached: A has no h to wrap
    assert "f" not in vars(a) and "h" not in vars(a)
