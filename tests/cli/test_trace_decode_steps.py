"""`trace --decode-steps` (issue 22, item 5): x0_hat decoded, scored and kept only at the chosen steps (decoding every
step of a 14B model cost 102 s per sample against 8.8 s for `run`); what it keeps equals the full trace there."""

import json

from safetensors.torch import load_file
from typer.testing import CliRunner

from steplens.presets import resolve
from steplens.cli import app


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


def test_decode_steps_keeps_the_chosen_steps_of_the_full_trace(tmp_path):
    base = ["trace", "--seed", 1, "--size", 3, "--steps", 6]
    r, text = _cli(*base, "--out", tmp_path / "all")
    assert r.exit_code == 0, text
    r, text = _cli(*base, "--decode-steps", "0,3,-1", "--out", tmp_path / "some")  # -1: the last step
    assert r.exit_code == 0, text
    full = json.loads((tmp_path / "all" / "metrics.json").read_text())
    some = json.loads((tmp_path / "some" / "metrics.json").read_text())
    assert full["steps"] == list(range(6)) and some["steps"] == [0, 3, 5]
    assert [m["step"] for m in some["per_step"]] == [0, 3, 5]
    assert some["sigmas"] == [full["sigmas"][k] for k in (0, 3, 5)]
    for m in some["per_step"]:
        assert m == full["per_step"][m["step"]]
    assert some["final_score"] == full["final_score"]
    x_all = load_file(str(tmp_path / "all" / "x0.safetensors"))["x0"]
    x_some = load_file(str(tmp_path / "some" / "x0.safetensors"))["x0"]
    assert x_some.shape[0] == 3 and (x_some == x_all[[0, 3, 5]]).all()
    assert some["summary"]["commitment_step"] in (None, 0, 3, 5)


def test_decode_steps_bad_values_are_named(tmp_path):
    for value, must in (("9", "--decode-steps: step 9 out of range; this run has steps 0..5 (-6..-1 from the end)"),
                        ("a,b", "comma-separated integers"), ("-7", "step -7 out of range"),
                        ("2,2", "repeated step 2"), ("5,-1", "repeated step 5")):
        r, text = _cli("trace", "--seed", 1, "--size", 3, "--steps", 6, "--decode-steps", value,
                       "--out", tmp_path / "o")
        assert r.exit_code == 2 and must in text and "Traceback" not in r.output, (value, text)


def test_decode_steps_from_the_end_with_the_models_own_steps(tiny_model):
    from steplens.tasks import get_task
    from steplens.trace import trace

    s = get_task("maze").sample(0, 3, 2)
    tr = trace(tiny_model, [s], [0], decode_steps=[0, -1])[0]  # steps: the model's own (20)
    n = tiny_model.sampling_defaults()["steps"]
    assert tr.steps == [0, n - 1] and tr.x0.shape[0] == 2 and [m["step"] for m in tr.metrics] == [0, n - 1]


class Watched:
    """The real model with its decode watched: the dtype of each latent it decodes and, at each call, how many of
    the latents and decoded videos it saw before are still held (by weak reference, after a garbage collection)."""

    def __init__(self, model):
        self._model, self.calls, self._seen = model, [], []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def decode(self, latent):
        import gc
        import weakref

        gc.collect()
        self.calls.append({"dtype": latent.dtype, "latents_held": sum(r() is not None for r, _ in self._seen),
                           "decoded_held": sum(d() is not None for _, d in self._seen)})
        px = self._model.decode(latent)
        self._seen.append((weakref.ref(latent), weakref.ref(px)))
        return px


def _tiny_wan22(tmp_path, dtype):
    from steplens.backends.wan.tiny import tiny_wan22_i2v
    from steplens.models.load import load_model

    tiny_wan22_i2v(seed=0).save_pretrained(tmp_path / "wan22")
    return load_model(f"wan:{tmp_path / 'wan22'}", dtype=dtype)


def test_wan_bfloat16_trace_keeps_x0_in_bfloat16_at_the_decode_steps_one_at_a_time(tmp_path):
    """x0_hat is kept in the model's dtype (the pipeline computes it in float32 from bfloat16 latents), only at the
    decode steps, and decoded one step at a time: no earlier step's latent or decoded video is held at a decode
    (the final output's decoded video is, it is the trace's `output`)."""
    import torch

    from steplens.tasks import get_task
    from steplens.trace import trace

    m = Watched(_tiny_wan22(tmp_path, "bfloat16"))
    s = get_task("maze").sample(0, 3, 3)
    for files in (None, [tmp_path / "streamed" / "x0.safetensors"]):
        m.calls.clear()
        m._seen.clear()
        kw = {} if files is None else {"x0_files": files}
        tr = trace(m, [s], [0], sampling=resolve(m, steps=6), decode_steps=[0, 3, -1], **kw)[0]
        assert tr.steps == [0, 3, 5] and len(m.calls) == 4, m.calls  # three steps and the output
        assert all(c["dtype"] == torch.bfloat16 for c in m.calls), m.calls
        assert all(c["latents_held"] == 0 for c in m.calls), m.calls
        assert all(c["decoded_held"] <= 1 for c in m.calls), m.calls  # the output's, nothing of the steps
        if files is None:
            assert tr.x0.shape[0] == 3 and tr.x0_file is None
        else:
            assert tr.x0 is None and tr.x0_file == files[0]
            x0 = load_file(str(files[0]))["x0"]
            assert x0.shape[0] == 3 and x0.dtype == torch.float32
            assert tr.frames.shape[0] == 3


def test_streamed_trace_files_equal_the_in_memory_ones(tmp_path):
    """`steplens trace` streams x0_hat to x0.safetensors step by step; every file it writes is byte for byte the
    one written from a trace held in memory (the embedded float32 model)."""
    from steplens.models.load import load_model
    from steplens.reports.traces import write_trace
    from steplens.tasks import draw, get_task
    from steplens.trace import trace

    r, text = _cli("trace", "--seed", 1, "--size", 3, "--steps", 6, "--decode-steps", "0,3,-1",
                   "--out", tmp_path / "cli")
    assert r.exit_code == 0, text
    m = load_model("tiny-maze")
    s = draw(get_task("maze"), 1, "test", 3, idx=1)  # the CLI's sample: seed 1's input of the test part
    tr = trace(m, [s], [s.seed], sampling=resolve(m, steps=6), decode_steps=[0, 3, -1])[0]
    assert tr.x0 is not None and tr.x0_file is None
    write_trace(tr, tmp_path / "memory")
    names = sorted(p.name for p in (tmp_path / "cli").iterdir() if p.name != "trace_config.json")  # the folder's
    assert (tmp_path / "cli" / "trace_config.json").is_file()  # configuration, which a trace in memory has not
    assert names == sorted(p.name for p in (tmp_path / "memory").iterdir()) and "x0.safetensors" in names
    for name in names:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name


def test_trace_gifs_are_not_blown_up_from_large_frames(tiny_model, tmp_path):
    """The trace's GIFs upscale tiny native frames x8 (a 7x7 maze: 56 px), but never past 512 px a side: x0_hat of a
    480p sample at x8 was a 3840x6656-pixel GIF frame, gigabytes held to write it (280 px frames: x1)."""
    import dataclasses

    from PIL import Image

    from steplens.reports.traces import write_trace
    from steplens.tasks import get_task
    from steplens.trace import trace

    s = get_task("maze").sample(0, 3, 2)
    tr = trace(tiny_model, [s], [0], sampling=resolve(tiny_model, steps=2), x0_files=[tmp_path / "small" / "x0.safetensors"])[0]
    write_trace(tr, tmp_path / "small")
    for name in ("final_x0.gif", "output.gif"):
        assert Image.open(tmp_path / "small" / name).size == (56, 56)
    k = 40  # the same trace at 280 x 280 pixels a frame
    big = dataclasses.replace(tr, sample=dataclasses.replace(s, first_frame=s.first_frame.repeat(k, 0).repeat(k, 1)),
                              frames=tr.frames.repeat(k, 2).repeat(k, 3),
                              output=tr.output.repeat_interleave(k, -1).repeat_interleave(k, -2))
    write_trace(big, tmp_path / "big")
    for name in ("final_x0.gif", "output.gif"):
        assert Image.open(tmp_path / "big" / name).size == (280, 280), name
