"""An output folder's identity on the tiny Wan2.2 pipeline with a DiffSynth LoRA pair (issue 22, findings 1 and 3):
a rerun without the LoRAs, with another LoRA scale or another dtype into a folder is refused before any write, naming
each differing field (run and probe); `run` writes the model's full decoded video at the sample's fps (or the one
frame per latent frame with --video latent-frames), and `score` reads both."""

import json

import imageio.v2 as iio2
import pytest
from typer.testing import CliRunner

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from steplens.cli import app  # noqa: E402

from builders import held_wan22  # noqa: E402
from steplens.io.files import read_mp4  # noqa: E402


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    root = tmp_path_factory.mktemp("held")
    one, two = held_wan22(root)
    data = root / "data"
    r = CliRunner().invoke(app, ["tasks", "generate", "maze", "--count", "3", "--size", "3", "--upscale", "2",
                                 "--out", str(data)])
    assert r.exit_code == 0, r.output
    return root, one, two, data


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_run_rerun_with_other_loras_or_dtype_is_refused_naming_the_fields(held, tmp_path, monkeypatch):
    import steplens.models.load as model_load

    loads, real = [], model_load.load_model
    monkeypatch.setattr(model_load, "load_model", lambda *a, **kw: loads.append(a) or real(*a, **kw))
    root, one, two, data = held
    model = ["--model", f"wan:{root / 'wan22'}", "--steps", 2]
    out = tmp_path / "run"
    r, _ = _cli("run", *model, "--lora", one, "--lora-2", f"{two}:0.5", "--data", data, "--out", out, "--count", 2)
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "run_config.json").read_text())
    assert cfg["loras"]["transformer"]["sha256"] and cfg["loras"]["transformer_2"]["scale"] == 0.5
    assert cfg["dtype"] == "float32" and cfg["model_sha256"]
    before = _files(out)
    for extra, field in (([], "loras"), (["--lora", one, "--lora-2", f"{two}:0.7"], "loras"),
                         (["--lora", one, "--lora-2", f"{two}:0.5", "--dtype", "bfloat16"], "dtype")):
        r, text = _cli("run", *model, *extra, "--data", data, "--out", out)  # 3 samples: one left to do
        assert r.exit_code != 0, text
        assert f"{field}: saved" in text and "another --out" in text, text
        assert _files(out) == before  # nothing written
        assert len(loads) == 1, extra  # refused before the pipeline loads (minutes at A14B)


def test_probe_without_the_loras_into_the_lora_store_is_refused(held, tmp_path):
    root, one, two, data = held
    args = ["probe", "energy", "--model", f"wan:{root / 'wan22'}", "--steps", 2, "--count", 1, "--size", 3,
            "--frames", 2, "--batch", 1]
    out = tmp_path / "energy"
    r, _ = _cli(*args, "--lora", one, "--lora-2", two, "--out", out)
    assert r.exit_code == 0, r.output
    rows = (out / "store" / "rows.jsonl").read_text()
    args[args.index("--count") + 1] = 2  # one more sample, no LoRAs
    r, text = _cli(*args, "--out", out)
    assert r.exit_code != 0 and "loras: saved" in text and "another --out" in text, text
    assert (out / "store" / "rows.jsonl").read_text() == rows


def test_run_writes_the_full_decoded_video_at_the_samples_fps(held, tmp_path):
    root, _, _, _ = held
    data = tmp_path / "data"  # a ground truth of 9 frames at 16 fps: 3 latent frames, 9 video frames
    r, _ = _cli("tasks", "generate", "maze", "--count", 1, "--size", 3, "--upscale", 2, "--out", data)
    assert r.exit_code == 0
    sample = next(data.rglob("ground_truth.mp4")).parent
    meta = json.loads((sample / "metadata.json").read_text())
    meta.pop("frames", None)
    (sample / "metadata.json").write_text(json.dumps(meta))
    gt = read_mp4(sample / "ground_truth.mp4")
    w = iio2.get_writer(str(sample / "ground_truth.mp4"), format="FFMPEG", fps=16, codec="libx264",
                        macro_block_size=1, pixelformat="yuv420p", ffmpeg_log_level="error")
    for i in range(9):
        w.append_data(gt[min(i * len(gt) // 9, len(gt) - 1)])
    w.close()
    model = ["--model", f"wan:{root / 'wan22'}", "--steps", 2]
    full, lat = tmp_path / "full", tmp_path / "lat"
    r, _ = _cli("run", *model, "--data", data, "--out", full)
    assert r.exit_code == 0, r.output
    mp4 = next(full.rglob("*.mp4"))
    video = read_mp4(mp4)
    assert len(video) == 9 and video.shape[1:] == gt.shape[1:]
    assert iio2.get_reader(str(mp4)).get_meta_data()["fps"] == 16
    r, _ = _cli("run", *model, "--data", data, "--out", lat, "--video", "latent-frames")
    assert r.exit_code == 0, r.output
    assert len(read_mp4(next(lat.rglob("*.mp4")))) == 3
    for folder in (full, lat):
        r, text = _cli("score", "--data", data, "--outputs", folder)
        assert r.exit_code == 0 and "solved" in text, text
