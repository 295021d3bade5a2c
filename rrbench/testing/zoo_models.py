"""Tiny, randomly initialised models of the zoo's architecture classes, built locally (no hub access).

Each builder writes a folder that loads with the same code path as the real checkpoint (``--model-path DIR`` next to
the alias), so tests exercise the real loading, prompt and scoring code; only the weights are random. The tokenizer is
a byte-level BPE with no merges except the answer words ("yes", "no"), plus the chat special tokens the prompts use,
so any text tokenizes and the answer tokens are single ids like in the real vocabularies.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from rrbench.models.flag_gemma_compat import patch_costwise_gemma

CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_bpe_tokenizer(kind: str = "chat") -> Any:
    """A PreTrainedTokenizerFast; ``kind`` "chat" (decoder LMs), "pair" (RoBERTa-style <s> A </s></s> B </s>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors  # lazy: heavy
    from transformers import PreTrainedTokenizerFast  # lazy: heavy: pulls in torch

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = [("y", "e"), ("ye", "s"), ("n", "o")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if kind == "chat":
        tok.add_special_tokens([*CHAT_SPECIALS, "<bos>"])
        return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                       bos_token="<bos>", model_input_names=["input_ids", "attention_mask"])
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok.add_special_tokens(specials)
    sep, cls = tok.token_to_id("</s>"), tok.token_to_id("<s>")
    assert sep is not None and cls is not None  # added just above
    tok.post_processor = processors.RobertaProcessing(("</s>", sep), ("<s>", cls), add_prefix_space=False)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", pad_token="<pad>", unk_token="<unk>",
                                   model_input_names=["input_ids", "attention_mask"])


def _save(model: Any, tokenizer: Any, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_tiny_qwen3(directory: str | Path, seed: int = 0) -> Path:
    """Qwen3ForCausalLM (the Qwen3-Reranker class), 2 layers, hidden 32."""
    import torch  # lazy: torch costs seconds at start-up
    from transformers import Qwen3Config, Qwen3ForCausalLM  # lazy: heavy: pulls in torch

    tok = byte_bpe_tokenizer("chat")
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return _save(Qwen3ForCausalLM(config), tok, directory)


def make_tiny_qwen2(directory: str | Path, seed: int = 0) -> Path:
    """Qwen2ForCausalLM (the mxbai-rerank-v2 class), 2 layers, hidden 32."""
    import torch  # lazy: torch costs seconds at start-up
    from transformers import Qwen2Config, Qwen2ForCausalLM  # lazy: heavy: pulls in torch

    tok = byte_bpe_tokenizer("chat")
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return _save(Qwen2ForCausalLM(config), tok, directory)


def make_tiny_classifier(directory: str | Path, arch: str = "xlm-roberta", seed: int = 0, num_labels: int = 1) -> Path:
    """A sequence classifier of the given class: "xlm-roberta" (bge-v2-m3, jina-v2), "deberta-v2" (mxbai-v1),
    "modernbert" (gte-modernbert)."""
    import torch  # lazy: torch costs seconds at start-up

    # lazy: heavy: pulls in torch
    from transformers import (
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        ModernBertConfig,
        ModernBertForSequenceClassification,
        PreTrainedModel,
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
    )

    tok = byte_bpe_tokenizer("pair")
    torch.manual_seed(seed)
    # keyword dicts: the configs take these architecture fields as **kwargs, which their signatures do not list
    common: dict[str, Any] = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, num_labels=num_labels, pad_token_id=tok.pad_token_id)
    model: PreTrainedModel
    if arch == "xlm-roberta":
        model = XLMRobertaForSequenceClassification(XLMRobertaConfig(max_position_embeddings=520, type_vocab_size=1,
                                                                     **common))
    elif arch == "deberta-v2":
        deberta: dict[str, Any] = dict(relative_attention=True, position_buckets=32, pos_att_type=["p2c", "c2p"])
        model = DebertaV2ForSequenceClassification(DebertaV2Config(max_position_embeddings=512, type_vocab_size=0,
                                                                   **deberta, **common))
    elif arch == "modernbert":
        modernbert: dict[str, Any] = dict(global_attn_every_n_layers=2, local_attention=16)
        model = ModernBertForSequenceClassification(ModernBertConfig(
            max_position_embeddings=512, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            sep_token_id=tok.sep_token_id, cls_token_id=tok.cls_token_id, **modernbert, **common))
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    return _save(model, tok, directory)


def make_tiny_lightweight_gemma(directory: str | Path, seed: int = 0, sliding_window: int = 16) -> Path:
    """FlagEmbedding's CostWiseGemmaForCausalLM (the bge-reranker-v2.5-gemma2-lightweight class): 4 layers, layer-wise
    score heads after layers 2 and 4. The sliding window (4096 in the real model) is short, so that the alternating
    sliding-window layers see a different mask from the full-attention ones on test-sized inputs. Under transformers
    5 it needs rrbench's patch of FlagEmbedding 1.4.2's model code, applied here (even saving fails without it)."""
    import torch  # lazy: torch costs seconds at start-up

    # lazy: heavy: pulls in torch
    from FlagEmbedding.inference.reranker.decoder_only.models.gemma_config import CostWiseGemmaConfig

    # lazy: heavy: pulls in torch
    from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import CostWiseGemmaForCausalLM

    patch_costwise_gemma()
    tok = byte_bpe_tokenizer("chat")
    torch.manual_seed(seed)
    config = CostWiseGemmaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                 num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                 max_position_embeddings=1024, layer_wise=True, start_layer=2, layer_sep=2,
                                 sliding_window=sliding_window, tie_word_embeddings=False,
                                 pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                 eos_token_id=tok.eos_token_id, attn_implementation="eager")
    return _save(CostWiseGemmaForCausalLM(config), tok, directory)


LISTWISE_CODE = '''"""A tiny listwise reranker with jina-reranker-v3's rerank() interface, for rrbench's offline tests.

Like jina-reranker-v3 ("last but not late" interaction) it reads the query and all documents in ONE causal forward
pass, takes the hidden state after each document and after the query, projects them and scores by cosine similarity,
so a document's score depends on its neighbours. The weights are random; only the interface and data flow matter.
"""
import torch
from transformers import PreTrainedModel, Qwen3Config, Qwen3Model


class TinyListwiseConfig(Qwen3Config):
    model_type = "tiny_listwise"


class TinyListwiseReranker(PreTrainedModel):
    config_class = TinyListwiseConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen3Model(config)
        self.projector = torch.nn.Linear(config.hidden_size, 16, bias=False)
        self.post_init()

    def _prompt(self, query, documents):
        parts = []
        for doc in documents:
            parts.append("<passage>" + doc + "<|embed_token|>")
        return "".join(parts) + "<query>" + query + "<|rerank_token|>"

    @torch.inference_mode()
    def rerank(self, query, documents, top_n=None, return_embeddings=False, **kwargs):
        from transformers import PreTrainedTokenizerFast
        if getattr(self, "_tok", None) is None:
            self._tok = PreTrainedTokenizerFast.from_pretrained(self.config._name_or_path)
        tok = self._tok
        ids = tok(self._prompt(query, documents), add_special_tokens=False, return_tensors="pt")["input_ids"]
        hidden = self.model(input_ids=ids).last_hidden_state[0]
        emb = tok.convert_tokens_to_ids("<|embed_token|>")
        rer = tok.convert_tokens_to_ids("<|rerank_token|>")
        docs = self.projector(hidden[ids[0] == emb])
        q = self.projector(hidden[ids[0] == rer][-1:])
        scores = torch.nn.functional.cosine_similarity(docs, q, dim=-1).tolist()
        results = [{"document": d, "relevance_score": s, "index": i} for i, (d, s) in enumerate(zip(documents, scores))]
        results.sort(key=lambda r: r["relevance_score"], reverse=True)
        return results[:top_n] if top_n else results
'''


def make_tiny_listwise(directory: str | Path, seed: int = 0) -> Path:
    """A local repository-code model exposing ``rerank(query, documents, top_n)`` like jina-reranker-v3; loading it
    needs ``trust_remote_code`` exactly like the real one (the code comes from the folder, not the network)."""

    import torch  # lazy: torch costs seconds at start-up

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "modeling_tiny_listwise.py").write_text(LISTWISE_CODE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_rrbench_tiny_listwise_{seed}", directory / "modeling_tiny_listwise.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import the model code just written to {directory}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    tok = byte_bpe_tokenizer("chat")
    tok.add_special_tokens({"additional_special_tokens": ["<|embed_token|>", "<|rerank_token|>"]})
    torch.manual_seed(seed)
    config = module.TinyListwiseConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                       max_position_embeddings=4096, pad_token_id=tok.pad_token_id)
    model = module.TinyListwiseReranker(config)
    _save(model, tok, directory)
    cfg = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    cfg["auto_map"] = {"AutoConfig": "modeling_tiny_listwise.TinyListwiseConfig",
                       "AutoModel": "modeling_tiny_listwise.TinyListwiseReranker"}
    cfg["model_type"] = "tiny_listwise"
    (directory / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return directory
