"""The HTML report of a real run, opened from file:// in headless Chromium.

Every figure must decode and take space on a 1280 px wide page, the page must make no request
but for itself and its data: images, and the browser must log no error (a blocked load is one).
Two controls show the checks can fail: an external image is seen as a request, blocked by the
page's policy and logged as an error; without the policy it is requested and not blocked (the
browser's host resolver maps every name to nothing, so it still goes nowhere).

Skips when no Chromium is installed, unless MOQWK_REQUIRE_BROWSER=1 (CI), where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("moqwk_test_cdp", Path(__file__).with_name("cdp.py"))
assert _spec is not None and _spec.loader is not None
cdp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cdp)

WIDTH = 1280
FIGURES_JS = """
Promise.all([...document.querySelectorAll('figure')].map(async f => {
  const img = f.querySelector('img');
  let decoded = true;
  try { await img.decode(); } catch (e) { decoded = false; }
  const r = img.getBoundingClientRect();
  return {id: f.id, decoded, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
          width: r.width, height: r.height, caption: f.querySelector('figcaption').innerText};
}))
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = cdp.find_chromium()
    if path is None:
        why = ("no Chromium found (apt-get install chromium, or set MOQWK_CHROMIUM to the "
               "browser's path)")
        if os.environ.get("MOQWK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MOQWK_REQUIRE_BROWSER=1 but {why}", pytrace=False)
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def page(chromium, reported_run) -> Path:
    """The shared run's report (conftest; after ``chromium``: no run is built just to skip)."""
    return reported_run.html


def open_page(chromium: str, url: str, profile: Path) -> tuple[list[str], dict, list[dict]]:
    """(requested URLs, blocked URL -> reason, log entries) once the page and figures loaded."""
    with cdp.Chromium(chromium, profile, width=WIDTH) as c:
        c.open(url)
        c.evaluate(FIGURES_JS)
        return c.requested_urls(), c.blocked(), c.log_entries()


def test_report_renders_every_figure_offline(chromium, page, tmp_path):
    with cdp.Chromium(chromium, tmp_path / "profile", width=WIDTH) as c:
        c.open(page.as_uri())
        figures = c.evaluate(FIGURES_JS)
        scroll_width = c.evaluate("document.documentElement.scrollWidth")
        shot = c.screenshot(tmp_path / "optuna_summary.png")
        urls, log = c.requested_urls(), c.log_entries()
    assert [f["id"] for f in figures] == ["pareto_front", "per_prompt_qwk", "calibration",
                                          "search_history", "selection_bias",
                                          "in_sample_vs_fresh"]
    for f in figures:
        assert f["decoded"] and f["naturalWidth"] > 0 and f["naturalHeight"] > 0, f["id"]
        assert 300 < f["width"] <= WIDTH and f["height"] > 150, f
        assert len(f["caption"]) > 100, f"{f['id']} has a caption that says how to read it"
    assert scroll_width <= WIDTH, "nothing overflows a 1280 px window"
    schemes = {urlparse(u).scheme for u in urls}
    assert schemes <= {"file", "data"}, urls
    assert [u for u in urls if u.startswith("file:")] == [page.as_uri()]
    assert not [e for e in log if e["level"] == "error"], log
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])
    assert width == WIDTH and height > 2000


def test_controls_an_external_image_is_blocked_and_without_the_policy_requested(
        chromium, page, tmp_path):
    text = page.read_text(encoding="utf-8")
    probe = '<img src="http://example.invalid/probe.png" alt="probe">'
    with_policy = page.with_name("with_policy.html")
    with_policy.write_text(text.replace("<main>", "<main>" + probe, 1), encoding="utf-8")
    no_policy = page.with_name("no_policy.html")
    stripped = "\n".join(ln for ln in text.splitlines() if "Content-Security-Policy" not in ln)
    no_policy.write_text(stripped.replace("<main>", "<main>" + probe, 1), encoding="utf-8")

    url = "http://example.invalid/probe.png"
    urls, blocked, log = open_page(chromium, with_policy.as_uri(), tmp_path / "p1")
    assert url in urls, "the attempt is seen (so the real test's URL check would fail)"
    assert blocked.get(url) == "csp"
    assert [e for e in log if e["level"] == "error" and url in e.get("text", "")], log

    urls, blocked, _log = open_page(chromium, no_policy.as_uri(), tmp_path / "p2")
    assert url in urls and url not in blocked, "without the policy nothing would stop it"
