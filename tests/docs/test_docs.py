"""The docs site: `mkdocs build --strict` passes, its Python snippets (and the steplens commands before them) run,
and the tutorial page renders in a real browser."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NO_MKDOCS_2_WARNING": "1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d",
                        str(out)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_the_site_builds_strict_with_every_page(site):
    for page in ("index.html", "tutorial/index.html", "reference/cli/index.html", "reference/api/index.html",
                 "explanation/held-out/index.html"):
        assert (site / page).is_file(), page
    cli = (site / "reference/cli/index.html").read_text()
    assert all(f"steplens {c}" in cli for c in ("trace", "probe", "study", "verifiers"))  # generated from typer
    api = (site / "reference/api/index.html").read_text()
    assert "results" in api and "content_id" in api


def blocks(page: Path) -> list[tuple[str, str]]:
    return re.findall(r"```(python|bash)\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.parametrize("page", ["tutorial.md", "explanation/held-out.md"])
def test_the_pages_snippets_run(page, tmp_path):
    """Each page's Python snippets in order, in one folder, after the `steplens` commands written before them."""
    steplens = [sys.executable, "-m", "steplens.cli"]
    ran = 0
    for lang, code in blocks(DOCS / page):
        if lang == "bash":
            for line in code.splitlines():
                line = line.split("#")[0].strip()
                if line.startswith("steplens "):
                    r = subprocess.run(steplens + shlex.split(line)[1:], cwd=tmp_path, env=ENV, capture_output=True,
                                       text=True, timeout=600)
                    assert r.returncode == 0, (line, r.stdout[-2000:], r.stderr[-2000:])
            continue
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, (code, r.stderr[-3000:])
        ran += 1
    assert ran >= 1


def test_the_tutorial_renders_in_chromium(site, tmp_path):
    sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    exe = next((shutil.which(n) for n in (os.environ.get("STEPLENS_CHROMIUM"), "chromium", "chromium-browser")
                if n and shutil.which(n)), None)
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium, as `make test` does where it can)")
    shot = tmp_path / "tutorial.png"
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1200, "height": 900})
        requests = []
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith("file:") else None)
        page.goto((site / "tutorial" / "index.html").as_uri())
        assert "Tutorial: your first trace" in page.inner_text("h1")
        assert page.locator("pre code").count() >= 4
        page.screenshot(path=str(shot))
        b.close()
    from PIL import Image
    import numpy as np

    px = np.asarray(Image.open(shot).convert("L"), float)
    assert px.std() > 10  # a page with text and colour, not a blank
    assert not requests, requests  # offline: no web fonts, no CDN
