"""Damaged or unusual sample folders as users hold them (issue 22, battery): image files read by their content, not
their name; symlinked sample and split folders followed (a loop named); prompt.txt in UTF-8 with a BOM or UTF-16
read, another encoding refused naming the file; a ground_truth.mp4 that is no video named before any write."""

import os

import pytest
from PIL import Image
from typer.testing import CliRunner

from builders import make_vbvr
from steplens.cli import app
from steplens.tasks import get_task, write_sample
from steplens.tasks.folders import SampleSource, find_samples


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


def _data(root, n=2, **kw):
    for i in range(n):
        write_sample(root, get_task("maze").sample(i, 3, 3, idx=i), scale=2, **kw)
    return root


def test_a_jpeg_saved_as_png_is_refused_by_its_content(tmp_path):
    for meta in (True, False):  # a steplens folder, a VBVR-layout folder without metadata
        root = tmp_path / f"m{meta}"
        if meta:
            _data(root)
        else:
            make_vbvr(root, per_task=1)
        first = sorted(root.rglob("first_frame.png"))[0]
        Image.open(first).convert("RGB").resize((176, 176)).save(first, format="JPEG", quality=90)
        with pytest.raises(ValueError) as e:
            SampleSource(data=root).load()
        msg = str(e.value)
        assert str(first) in msg and "JPEG" in msg and "not a PNG" in msg, msg


def test_symlinked_sample_and_split_folders_are_followed(tmp_path):
    real = _data(tmp_path / "real", n=3)
    data = tmp_path / "data" / "maze"
    data.mkdir(parents=True)
    for d in sorted((real / "maze").iterdir())[:2]:
        os.symlink(d, data / d.name)  # two sample folders linked
    (data / "00002").mkdir()  # one real
    for f in (real / "maze" / "00002").iterdir():
        (data / "00002" / f.name).write_bytes(f.read_bytes())
    found = find_samples(tmp_path / "data")
    assert [d.name for d in found] == ["00000", "00001", "00002"]
    assert all(d.parent == data for d in found)  # the places as linked, so outputs mirror them
    vbvr = tmp_path / "vbvr-real"
    keys = make_vbvr(vbvr, per_task=2)
    linked = tmp_path / "vbvr"
    linked.mkdir()
    for split in sorted({k.split("/")[0] for k in keys}):
        os.symlink(vbvr / split, linked / split)  # split folders linked
    assert len(find_samples(linked)) == len(keys)
    os.symlink(tmp_path / "data", data / "loop")  # a link back to an ancestor
    with pytest.raises(ValueError) as e:
        find_samples(tmp_path / "data")
    assert "loop" in str(e.value) and str(data / "loop") in str(e.value)


def test_prompt_encodings(tmp_path):
    root = _data(tmp_path / "d", n=1)
    prompt = next(root.rglob("prompt.txt"))
    text = "Zeichne den Weg zum Ziel — ö"
    for enc in ("utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom"):
        data = {"utf-16-le-bom": b"\xff\xfe" + text.encode("utf-16-le"),
                "utf-16-be-bom": b"\xfe\xff" + text.encode("utf-16-be")}.get(enc) or text.encode(enc)
        prompt.write_bytes(data)
        assert SampleSource(data=root).load()[0].prompt == text, enc
    prompt.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError) as e:
        SampleSource(data=root).load()
    msg = str(e.value)
    assert str(prompt) in msg and "UTF-8" in msg and "0xe9" in msg, msg
    r, text = _cli("run", "--data", root, "--out", tmp_path / "o", "--steps", 2)
    assert r.exit_code == 2 and "prompt.txt" in text and "Traceback" not in r.output, text


def test_a_ground_truth_that_is_no_video_is_named_before_any_write(tmp_path):
    for meta in (True, False):
        root = tmp_path / f"d{meta}"
        _data(root, metadata=meta)
        gt = sorted(root.rglob("ground_truth.mp4"))[1]
        gt.write_bytes(next(root.rglob("first_frame.png")).read_bytes())  # a PNG under the video's name
        out = tmp_path / f"o{meta}"
        r, text = _cli("run", "--data", root, "--out", out, "--steps", 2)
        assert r.exit_code == 2 and str(gt) in text and "not a readable video" in text, text
        assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
