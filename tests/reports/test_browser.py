from steplens.presets import resolve
"""The demo report in a real browser (headless Chromium from Debian's packages, driven by Playwright): it loads
with no console error and no network request, every image loads, the step slider and the arrow keys change the
shown step's image and label, and the highlight toggle changes the image."""

import os
import shutil

import pytest

pytestmark = pytest.mark.slow


def chromium() -> str | None:
    for name in (os.environ.get("STEPLENS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright, "
                                                             "part of the 'test' extra)")
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium, as `make test` does where it can; or set "
                    "STEPLENS_CHROMIUM to a Chromium binary)")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from steplens.orchestrators.demo import run_demo
    from steplens.models.load import load_model

    out = tmp_path_factory.mktemp("demo")
    return run_demo(load_model("tiny-maze"), out, count=4, sampling=resolve(load_model("tiny-maze"), steps=8))


def test_demo_report_in_chromium(browser, report, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    assert not problems, problems
    assert requests and all(u.startswith("file://") for u in requests), [u for u in requests if "file://" not in u]
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("img").count() >= 4 * 4  # sprites, grids, gifs of 4 samples and the mean curves

    viewer = page.locator(".slv").nth(3)  # a 6x6 maze: the edge of the model's ability
    frame, label = viewer.locator(".slv-frame"), viewer.locator(".slv-label")
    marker = viewer.locator(".slv-marker")
    assert label.inner_text().startswith("step 0 / 7 · σ = 1.000")
    before, x_before = frame.screenshot(), marker.get_attribute("x1")
    page.screenshot(path=str(tmp_path / "demo-step0.png"), full_page=False)

    slider = viewer.locator(".slv-step")
    slider.focus()
    page.keyboard.press("End")  # the slider itself: to the last step
    assert label.inner_text().startswith("step 7 / 7")
    assert frame.get_attribute("data-step") == "7" and marker.get_attribute("x1") != x_before
    last = frame.screenshot()
    assert last != before  # x0_hat at the last step is not x0_hat at step 0

    viewer.locator(".slv-frame").click()  # arrow keys move the viewer last touched
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert label.inner_text().startswith("step 5 / 7")

    viewer.locator(".slv-highlight").check()
    assert frame.get_attribute("data-view") == "highlight" and label.inner_text().startswith("step 5 / 7")
    highlighted = frame.screenshot()
    viewer.locator(".slv-highlight").uncheck()
    assert highlighted != frame.screenshot()
    page.screenshot(path=str(tmp_path / "demo-highlight.png"), full_page=False)
    page.close()


def test_chains_report_teacher_follows_the_student_at_the_nearest_sigma(browser, tmp_path):
    """steplens.orchestrators.chains: moving the student's slider moves the teacher's viewer to the step nearest in σ."""
    from steplens.orchestrators.chains import align_by_sigma, compare_chains
    from steplens.experiments.grid import ExperimentSettings
    from steplens.models.wrap import EmbeddedModel
    from tests.conftest import random_net

    cfg = {"tasks": {"maze": 1.0}}
    teacher = EmbeddedModel(random_net(0), name="teacher", info={"train_config": cfg, "sampling": {"steps": 6}})
    student = EmbeddedModel(random_net(1), name="student",
                            info={"train_config": cfg, "sampling": {"sigmas": [1.0, 0.9, 0.75, 0.5]}})
    compare_chains(student, teacher, tmp_path / "c", ExperimentSettings(task="maze", size=3, count=1, frames=3),
                   progress=False)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto((tmp_path / "c" / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")
    assert not problems, problems
    pair = page.locator(".slp").first
    student_v, teacher_v = pair.locator(".slv").nth(0), pair.locator(".slv").nth(1)
    sig = page.evaluate("JSON.parse(document.querySelectorAll('.slp .slv')[1].querySelector('script').textContent)"
                        ".sigmas")
    align = align_by_sigma([1.0, 0.9, 0.75, 0.5], sig)
    student_v.locator(".slv-step").focus()
    for k in range(4):
        assert student_v.locator(".slv-frame").get_attribute("data-step") == str(k)
        assert teacher_v.locator(".slv-frame").get_attribute("data-step") == str(align[k])
        page.keyboard.press("ArrowRight")
    assert align != list(range(4))  # the teacher's steps are not the student's
