"""The fixtures rrbench ships for plugin authors work as documented."""

from __future__ import annotations

from rrbench import RetrieverSpec, hookimpl
from rrbench.tasks.resolve import load_task_dir


class _Plugin:
    @hookimpl
    def register_retrievers(self, register):
        register(RetrieverSpec(id="fixture-bm25", loader="rrbench.retrievers.bm25:BM25Retriever",
                               options={"k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "none",
                                        "stopwords": "none"}))


def test_fixtures(rrbench_mini_task, rrbench_register, rrbench_tiny_cross_encoder):
    task = load_task_dir(rrbench_mini_task)
    assert sum(1 for q in task.queries if not task.has_evidence(q)) == 2
    registry = rrbench_register(_Plugin(), name="fixture-plugin")
    assert registry.get("retrievers", "fixture-bm25").plugin == "fixture-plugin"
    assert (rrbench_tiny_cross_encoder / "config.json").is_file()


def test_registration_is_undone_after_the_test():
    from rrbench.components.registry import get_registry

    assert not get_registry().has("retrievers", "fixture-bm25")
