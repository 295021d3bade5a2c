"""The board's cross-task view: derived from verified per-task records, BM25 pinned per task, Holm over tasks for
"fails on", a non-inferiority intersection-union test for "holds everywhere"."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from rrbench.cli.main import main
from rrbench.components.registry import reset_registry
from rrbench.leaderboard.board import collect
from rrbench.leaderboard.cross_task import CrossSystem, TaskCell, cross_task
from rrbench.measures.significance import holm, per_query_values, sign_flip_test
from tests.support.task_variants import make_variant_task

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _two_task_board(tmp_path: Path, tiny_model: Path) -> Path:
    """BM25 at pools 100 and 5 and the tiny cross-encoder, each run on two mini-task variants and published."""
    tasks = Path(os.environ["RRBENCH_TASKS_DIR"])
    make_variant_task(tasks / "task-a", seed=3, sentences=(3, 5), no_evidence=0.2)
    make_variant_task(tasks / "task-b", seed=5, sentences=(8, 11), no_evidence=0.5)
    reset_registry()
    board = tmp_path / "board"
    runs = tmp_path / "runs"
    for name, args in (("bm25", []), ("tiny", ["--reranker", str(tiny_model), "--threshold", "0.0"]),
                       ("bm25-k5", ["--top-k-retriever", "5"])):
        assert main(["run", "--tasks", "task-a,task-b", "--split", "dev_final", *args, "--quiet", "--output",
                     str(runs / name)]) == 0
        for task in ("task-a", "task-b"):
            assert main(["publish", str(runs / name / task), "--to", str(board)]) == 0
    return board


def test_a_system_on_two_tasks_is_compared_with_bm25_pinned_on_each(tmp_path, tiny_model, capsys):
    board = _two_task_board(tmp_path, tiny_model)
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 0
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 0
    text = (board / "README.md").read_text()
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board), "--html", str(tmp_path / "site")]) == 0
    assert "Δ BM25" in (tmp_path / "site" / "across-tasks.html").read_text()
    assert "## Across tasks" in text and "Holds everywhere" in text
    systems = cross_task(collect(board))
    tiny = next(s for s in systems if "local-model@" in s.name)
    assert [c.task for c in tiny.cells] == ["task-a@1", "task-b@1"]
    # by hand, from the published records: the delta to BM25 with the same pool size (K100, not the K5 record)
    groups = collect(board)
    p_worse = []
    for cell in tiny.cells:
        entries = groups[(cell.task, "dev_final")].verified
        ours = next(e for e in entries if e.record.config.rerankers)
        bm25 = next(e for e in entries if not e.record.config.rerankers and e.record.config.top_k_retriever == 100)
        a, b = (per_query_values(e.verified.per_query, "nDCG@10") for e in (ours, bm25))
        diff = np.asarray([a[q] - b[q] for q in sorted(a)])
        assert cell.delta == pytest.approx(diff.mean(), abs=1e-12) and cell.bm25 == bm25.main_value
        assert cell.p_worse == sign_flip_test(diff, alternative="less")
        assert cell.p_noninferior == sign_flip_test(diff, alternative="greater", null_mean=-0.01)
        p_worse.append(cell.p_worse)
    assert [c.p_worse_holm for c in tiny.cells] == holm(p_worse)
    # BM25 itself is a system on both tasks, without a delta to itself
    plain = next(s for s in systems if "no reranker" in s.name and "K100" in s.name)
    assert all(c.delta is None for c in plain.cells) and plain.holds_everywhere() is None

    # a wider margin is the board's setting: README and HTML say it, and the board passes its own check
    site = tmp_path / "site"
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board), "--margin", "0.05", "--html",
                 str(site)]) == 0
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 0
    assert "by margin 0.05" in (board / "README.md").read_text()
    wide = next(s for s in cross_task(collect(board), margin=0.05) if "local-model@" in s.name)
    for cell, narrow in zip(wide.cells, tiny.cells, strict=True):
        assert cell.delta == narrow.delta and cell.p_noninferior <= narrow.p_noninferior
    page = (site / "across-tasks.html").read_text()
    assert "by 0.05 on every task" in page and page.count("<svg") == 1  # a forest plot for the one system with deltas
    links = re.findall(r'href="(records/[^"]+)"', page)
    assert links and all((site / link).is_file() for link in links)
    assert sum(f"records/{c.bm25_record}.html" in links for c in tiny.cells) == 2  # the pinned BM25 records


def test_fails_on_and_holds_everywhere_by_construction():
    def system(*cells):
        return CrossSystem("s", "dev_final", list(cells))

    # non-inferior on every task at 0.05: holds everywhere; nothing fails
    ok = system(TaskCell("a", 0.7, 0.1, p_worse_holm=0.9, p_noninferior=0.01),
                TaskCell("b", 0.6, 0.1, p_worse_holm=0.8, p_noninferior=0.04))
    assert ok.holds_everywhere() is True and ok.fails_on() == [] and ok.mean() == pytest.approx(0.65)
    # one noisy task not shown non-inferior: the IUT fails although the mean looks fine; no task fails significantly
    noisy = system(TaskCell("a", 0.9, 0.1, p_worse_holm=0.9, p_noninferior=0.001),
                   TaskCell("b", 0.5, 0.1, p_worse_holm=0.2, p_noninferior=0.3))
    assert noisy.holds_everywhere() is False and noisy.fails_on() == []
    # a clear loss on one task
    loses = system(TaskCell("a", 0.8, 0.1, p_worse_holm=0.99, p_noninferior=0.001),
                   TaskCell("b", 0.4, 0.1, p_worse_holm=0.001, p_noninferior=0.99))
    assert loses.fails_on() == ["b"] and loses.holds_everywhere() is False


def test_the_across_tasks_page_in_chromium(tmp_path, tiny_model):
    """The page a user opens: the summary links each system's section, the forest plot draws inside its frame,
    and the task and BM25 links open the records they were derived from."""
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.leaderboard.test_board_html import ARGS, CHROMIUM

    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed (the README's Testing block installs it: apt-get install chromium)")
    board = _two_task_board(tmp_path, tiny_model)
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board), "--html", str(tmp_path / "site")]) == 0
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((tmp_path / "site" / "index.html").as_uri())
            page.click("text=Across tasks")
            names = page.eval_on_selector_all("#board tbody tr", "rows => rows.map(r => r.cells[0].innerText)")
            assert len(names) == 3 and any("local-model@" in n for n in names)
            page.click("#board th:nth-child(6)")  # worst delta to BM25: the system with deltas first
            assert "local-model@" in page.inner_text("#board tbody tr:first-child td:first-child")
            page.click("#board tbody tr:first-child td:first-child a")
            anchor = page.url.rsplit("#", 1)[-1]
            assert anchor.startswith("system-")
            svg = page.query_selector("svg")
            frame, dots = svg.bounding_box(), page.query_selector_all("svg circle")
            assert len(dots) == 2
            for dot in dots:
                box = dot.bounding_box()
                assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
            page.screenshot(path=str(tmp_path / "across.png"), full_page=True)
            page.locator(f"#{anchor} ~ table").first.locator("a").first.click()  # the first task's record
            claims = page.inner_text("#claims")
            assert "/records/" in page.url and "local-model" in page.url and '"task-a"' in claims
        finally:
            browser.close()
    assert (tmp_path / "across.png").stat().st_size > 5_000
