"""The result record, as one typed model: what a run claims, what follows from its evidence, and what it merely says.

A record has three parts, and only the first is trusted:

- **claims** (``config``, hashed into ``config_hash``): the task (id, version, data hash), the split, every
  component (id, the plugin and distribution that provide it, revision or weights hash, options), pool sizes, how
  scores are combined and the decision configuration. They say *what* ran; the verifier resolves them against the
  registry and the registered task, and can re-score a sample of pairs with the claimed model.
- **derived** values (``system``, ``main_score``, ``metrics``, ``per_query``, ``decision``): what follows from the
  claims, the evidence files beside the record (``scores.jsonl.gz``: every stage's raw scores per pair) and the
  task's own labels. ``rrbench leaderboard check`` recomputes every one of them and refuses a record whose stored
  values differ; the board shows the recomputed ones.
- **provenance**: timings, packages, hardware, the command, cache statistics. Useful to a reader, never used to rank
  or verify anything.

The schema is versioned and strict: unknown fields, wrong types, non-finite numbers and identifiers outside one
ASCII pattern are refused with one line naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from rrbench.util.errors import UsageError
from rrbench.util.io import canonical_hash
from rrbench.util.strict_yaml import describe_validation_error

SCHEMA_VERSION: Literal[2] = 2

#: Identifiers in records and specs: ASCII letters, digits and ``. _ - : / @ +`` (hub ids and ``plugin:id`` need
#: them), nothing else: no homoglyphs, whitespace, ``|``, ``<`` or newlines that could pass for another name or
#: break a table.
ID_PATTERN = r"^[A-Za-z0-9._\-:/@+]{1,200}$"
_ID = re.compile(ID_PATTERN)
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
#: split names: identifiers, plus ``~`` for the grouped folds of a split (``train~fold1of5``, ``train~rest1of5``)
SplitName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._\-~]{1,100}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Number = StrictFloat | StrictInt
#: option values a component may carry: JSON scalars and (nested) lists and objects of them
OptionValue = Any

RESULTS_FILE = "results.json"
RUN_FILE = "run.trec"
QRELS_FILE = "qrels.trec"
SCORES_FILE = "scores.jsonl.gz"
CALIBRATION_SCORES_FILE = "calibration_scores.jsonl.gz"


class RecordError(UsageError):
    """A record that is malformed, inconsistent or fails a check: one line naming the file and the field."""


def is_identifier(text: str) -> bool:
    return bool(_ID.match(text))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# -- claims ------------------------------------------------------------------------------------------------------------
class TaskClaim(_Strict):
    id: Identifier
    version: StrictInt
    data_sha256: Sha256


class CheckpointClaim(_Strict):
    """An rrbench-trained checkpoint: the weights' hash and the hashed manifest of the training that made them."""

    weights_sha256: Sha256
    training_manifest: dict[str, Any]
    training_manifest_sha256: Sha256


class ComponentClaim(_Strict):
    """One component as it ran. ``plugin`` names the registry entry (``plugin:id``); ``distribution`` and ``version``
    the package that provides it (the version only for third-party plugins: rrbench's own is provenance)."""

    kind: Literal["retrievers", "fusers", "rerankers", "calibrators"]
    id: Identifier
    plugin: Identifier
    distribution: Identifier | None = None
    version: Identifier | None = None
    revision: Identifier | None = None
    weights_sha256: Sha256 | None = None
    score_kind: Identifier | None = None
    options: dict[str, OptionValue] = Field(default_factory=dict)
    #: rerankers: effective max_length, dtype, instruction (they change scores)
    settings: dict[str, OptionValue] = Field(default_factory=dict)
    checkpoint: CheckpointClaim | None = None

    @property
    def qualified(self) -> str:
        return f"{self.plugin}:{self.id}"


class GeneratorClaim(_Strict):
    retrievers: list[ComponentClaim] = Field(min_length=1)
    fusion: ComponentClaim | None = None
    context: StrictInt = 0


class CombinationClaim(_Strict):
    weights: list[Number] = Field(default_factory=list)
    ensemble_norm: Literal["minmax", "zscore"] = "minmax"
    beta: Number = 0.0
    interpolate_norm: Literal["minmax", "zscore"] = "minmax"


class FitClaim(_Strict):
    """Where a calibrator or a fitted threshold was fitted: a split (of ``task``, default the record's own task),
    or grouped cross-fitting on the evaluated split."""

    split: SplitName | None = None
    task: TaskClaim | None = None
    cross_fit: StrictInt | None = None
    seed: StrictInt | None = None


class ThresholdClaim(_Strict):
    """The decision threshold: ``value`` is the threshold itself for ``fixed`` and ``checkpoint``, the
    false-evidence budget the threshold is fitted to for ``max-fe``, and unset otherwise (a fitted threshold is
    data, derived, never claimed)."""

    mode: Literal["natural", "fixed", "fit", "max-fe", "checkpoint"] = "natural"
    value: Number | None = None


class DecisionClaim(_Strict):
    policy: Literal["max", "margin"] = "max"
    calibrator: ComponentClaim | None = None
    threshold: ThresholdClaim = ThresholdClaim()
    fit: FitClaim | None = None


class RunClaims(_Strict):
    """The hashed configuration of a run rrbench scored."""

    task: TaskClaim
    split: SplitName
    generator: GeneratorClaim
    top_k_retriever: StrictInt = Field(ge=1)
    rerankers: list[ComponentClaim] = Field(default_factory=list)
    top_k_rerank: StrictInt = Field(ge=0)
    combination: CombinationClaim = CombinationClaim()
    decision: DecisionClaim = DecisionClaim()


class OutsideRunClaim(_Strict):
    sha256: Sha256
    tags: list[Identifier]


class OutsideClaims(_Strict):
    """The hashed configuration of an outside run file scored with ``rrbench evaluate``."""

    task: TaskClaim
    split: SplitName
    run: OutsideRunClaim
    threshold: Number | None = None


# -- derived -----------------------------------------------------------------------------------------------------------
class DerivedDecision(_Strict):
    threshold: Number | None
    source: StrictStr
    scale: StrictStr
    statistic: dict[str, Number | None]
    answered: dict[str, StrictBool] | None
    calibrator: dict[str, Any] | None = None
    folds: list[dict[str, Any]] | None = None
    reliability: list[dict[str, Number]] | None = None


# -- provenance --------------------------------------------------------------------------------------------------------
class TestSplitUse(_Strict):
    """The test ledger line this record claimed when it read test labels (``rrbench run --final``)."""

    ledger: StrictStr
    line: dict[str, Any]
    selected_after_test_seen: StrictBool = False


class Provenance(_Strict):
    """What a record says about how it was made. Informational: never hashed, verified or ranked on."""

    rrbench_version: StrictStr
    created: StrictStr
    command: StrictStr
    packages: dict[str, StrictStr] = Field(default_factory=dict)
    hardware: dict[str, Any] = Field(default_factory=dict)
    wall_time_s: Number | None = None
    rerank_time_s: Number | None = None
    pairs_scored: StrictInt | None = None
    pairs_per_s: Number | None = None
    pairs_per_s_note: StrictStr | None = None
    peak_rss_mb: Number | None = None
    run_options: dict[str, Any] = Field(default_factory=dict)
    #: each reranker as it described itself (backend, resolved and requested dtype, runtime export, effective
    #: dtype of a layerwise model): what a reader wants to know, none of which the claims need
    rerankers: list[dict[str, Any]] = Field(default_factory=list)
    cache: dict[str, Any] = Field(default_factory=dict)
    candidate_cache: dict[str, Any] = Field(default_factory=dict)
    models_loaded: list[StrictBool] = Field(default_factory=list)
    selected_on: Identifier | None = None
    selected_max_fe: Number | None = None
    score_bundles: list[Sha256] = Field(default_factory=list)
    test_split: TestSplitUse | None = None
    speed_only: StrictBool = False


# -- the record ----------------------------------------------------------------------------------------------------------
class Record(_Strict):
    schema_version: Literal[2]
    kind: Literal["run", "outside"]
    config: RunClaims | OutsideClaims
    config_hash: Sha256
    system: StrictStr
    main_score: Identifier
    metrics: dict[str, Number | None]
    per_query: dict[str, dict[str, Number]]
    decision: DerivedDecision | None = None
    provenance: Provenance

    @property
    def run_claims(self) -> RunClaims:
        if not isinstance(self.config, RunClaims):
            raise RecordError("an outside run has no run claims")
        return self.config

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def claims_hash(claims: RunClaims | OutsideClaims) -> str:
    """The configuration hash: sha256 of the canonical JSON of the claims (sorted keys, no whitespace)."""
    return canonical_hash(claims.model_dump(mode="json"))


def parse_record(raw: Any, where: str) -> Record:
    """A :class:`Record` from parsed JSON, or one :class:`RecordError` naming every field at fault."""
    if isinstance(raw, dict):
        version = raw.get("schema_version")
        if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
            newer = "newer than this rrbench understands" if version > SCHEMA_VERSION else "an older format"
            raise RecordError(f"{where}: schema_version {version} is {newer} ({SCHEMA_VERSION}); re-make the record "
                              f"with this rrbench")
        kind = raw.get("kind")
        config = raw.get("config")
        if kind in ("run", "outside") and isinstance(config, dict):
            model = RunClaims if kind == "run" else OutsideClaims
            try:
                model.model_validate(config)
            except ValidationError as exc:
                raise RecordError(f"{where}: config: {describe_validation_error(exc)}") from None
    try:
        return Record.model_validate(raw)
    except ValidationError as exc:
        raise RecordError(f"{where}: {describe_validation_error(exc)}") from None
