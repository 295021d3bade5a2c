"""The HTML leaderboard in a real browser: Debian's chromium driven by playwright, from file:// with no network.

The README's Testing block installs chromium, so in CI this test runs; on a machine without it, it is skipped with
the reason (never silently passed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rrbench.leaderboard.board import build_rows, collect
from rrbench.leaderboard.html import pareto_front, write_site

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def test_pareto_front():
    # maximise y; x is FE rate (minimise): (0.1, 0.7) and (0.3, 0.8) are on the front, (0.4, 0.6) is dominated
    assert pareto_front([(0.1, 0.7), (0.3, 0.8), (0.4, 0.6)], maximise_x=False) == [0, 1]
    # x is pairs/s (maximise): (100, 0.7) dominates (50, 0.6)
    assert pareto_front([(50, 0.6), (100, 0.7), (10, 0.9)], maximise_x=True) == [1, 2]


def test_html_board_sorts_filters_and_opens_details_in_chromium(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed (the README's Testing block installs it: apt-get install chromium)")
    site = tmp_path / "site"
    index = write_site(ROOT / "leaderboard", site)
    page_file = site / "scifact-evidence@1--dev_final.html"
    html = page_file.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    expected = build_rows(collect(ROOT / "leaderboard")[("scifact-evidence@1", "dev_final")].verified)

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(index.as_uri())
            page.click("text=scifact-evidence@1 · dev_final")
            assert page.url.endswith("scifact-evidence@1--dev_final.html")

            def column(i: int) -> list[str]:
                return page.eval_on_selector_all(
                    "#board tbody tr", f"rows => rows.filter(r => r.style.display !== 'none')"
                    f".map(r => r.cells[{i}].getAttribute('data-sort'))")

            names = page.eval_on_selector_all("#board tbody tr", "rows => rows.map(r => r.cells[1].innerText)")
            assert names == [r.name for r in expected]
            assert len(page.query_selector_all("#board span.tie")) == sum(r.tied for r in expected)
            # click "R@10": numeric columns sort descending first, a second click ascending
            page.click("#board th:nth-child(7)")
            r10 = [float(v) for v in column(6)]
            assert r10 == sorted(r10, reverse=True) and r10 != [r.metric("R@10") for r in expected]
            page.click("#board th:nth-child(7)")
            assert [float(v) for v in column(6)] == sorted(r10)
            page.click("#board th:nth-child(2)")  # text column: A to Z
            systems = column(1)
            assert systems == sorted(systems, key=str.lower)
            page.fill("#filter", "minilm")
            visible = column(1)
            assert visible and all("minilm" in v.lower() for v in visible) and len(visible) < len(expected)
            assert page.inner_text("#shown") == str(len(visible))
            assert page.query_selector_all("svg circle"), "Pareto plots have points"
            assert "self-reported" in page.inner_text("body")
            page.fill("#filter", "")
            page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
            # the detail view of a record: claims, histogram, reproducing command
            page.click("#board tbody tr:first-child td:nth-child(2) a")
            assert "/records/" in page.url
            assert page.inner_text("#command").startswith("rrbench ")
            claims = page.inner_text("#claims")
            assert '"data_sha256"' in claims and '"split"' in claims
            assert "config hash" in page.inner_text("body")
            assert page.query_selector("svg rect[height]") is not None
            assert all(u.startswith("file://") for u in requests), requests
        finally:
            browser.close()
    assert (tmp_path / "board.png").stat().st_size > 10_000
