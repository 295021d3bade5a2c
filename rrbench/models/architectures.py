"""The architecture of every zoo reranker: the transformers config of the real model and its exact parameter count.

Why: speed and memory depend on the architecture and its sizes, never on the values of the weights. With these
configs rrbench builds a *replica* (:mod:`rrbench.models.replica`): the real model's class and sizes with random
weights, scored through the reranker's own backend, so the zoo's speed and memory can be measured where the weights
cannot be downloaded. Replicas never say anything about quality.

Plain data, no torch. Each entry holds:

- ``class``: the transformers class the real checkpoint loads as (``CostWiseGemmaForCausalLM`` is FlagEmbedding's);
- ``config``: the architecture fields of the real ``config.json`` (sizes, vocabulary, position embeddings, rope);
- ``params``: the exact parameter count and ``params_source`` saying where that number is published. Where a card
  gives only a rounded figure, the count is the one the config gives and the source says so;
- ``source``/``revision``: where the config values come from (the hub repository at the revision MTEB pins, or the
  base model's published config);
- ``stand_in``: set when the real model needs repository code (jina-reranker-v2's flash-attention XLM-R, jina-reranker-v3);
  the replica then uses the nearest standard transformers class, and tables say so;
- ``tokenizer``: the tokenizer family, and ``real_tokenizer`` where rrbench can load the real vocabulary offline.

The parameter counts of MTEB (``mteb/models/model_implementations/*.py``, commit a905523d) are exact integers read
from the safetensors files; ``tests/models/test_replica.py`` counts each config's parameters on the meta device and
checks them against ``params`` within 1%.
"""

from __future__ import annotations

from typing import Any

MTEB = "MTEB model metadata (embeddings-benchmark/mteb@a905523d, mteb/models/model_implementations/{file})"

_XLMR_COMMON: dict[str, Any] = {
    "model_type": "xlm-roberta", "vocab_size": 250002, "type_vocab_size": 1, "hidden_act": "gelu",
    "layer_norm_eps": 1e-05, "position_embedding_type": "absolute", "pad_token_id": 1, "bos_token_id": 0,
    "eos_token_id": 2, "num_labels": 1,
}
_DEBERTA_V3_COMMON: dict[str, Any] = {
    "model_type": "deberta-v2", "vocab_size": 128100, "max_position_embeddings": 512, "type_vocab_size": 0,
    "relative_attention": True, "position_buckets": 256, "max_relative_positions": -1, "norm_rel_ebd": "layer_norm",
    "share_att_key": True, "pos_att_type": ["p2c", "c2p"], "position_biased_input": False, "layer_norm_eps": 1e-07,
    "hidden_act": "gelu", "pad_token_id": 0, "num_labels": 1,
}
_QWEN2_5_COMMON: dict[str, Any] = {
    "model_type": "qwen2", "vocab_size": 151936, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06, "hidden_act": "silu", "tie_word_embeddings": True, "use_sliding_window": False,
    "bos_token_id": 151643, "eos_token_id": 151643,
}
_QWEN3_COMMON: dict[str, Any] = {
    "model_type": "qwen3", "head_dim": 128, "max_position_embeddings": 40960, "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06, "hidden_act": "silu", "attention_bias": False, "use_sliding_window": False,
    "num_key_value_heads": 8, "bos_token_id": 151643, "eos_token_id": 151645,
}

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "bge-v2-m3": {
        "class": "XLMRobertaForSequenceClassification",
        "config": {**_XLMR_COMMON, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                   "intermediate_size": 4096, "max_position_embeddings": 8194},
        "params": 567_755_777,
        "params_source": "counted from the config; agrees with " + MTEB.format(file="rerankers_custom.py")
                         + " (n_embedding_parameters 256,002,048; memory_usage_mb 2166 at fp32)",
        "source": "BAAI/bge-reranker-v2-m3 config.json (XLM-RoBERTa large, BGE-M3's 8192-token positions)",
        "revision": "953dc6f6f85a1b2dbfca4c34a2796e7dde08d41e",
        "head": "sequence-classification logit ([CLS] dense + out_proj)", "tokenizer": "xlm-roberta sentencepiece",
    },
    "bge-gemma2-lightweight": {
        "class": "CostWiseGemmaForCausalLM",
        "config": {"model_type": "cost_wise_gemma", "vocab_size": 256000, "hidden_size": 3584,
                   "intermediate_size": 14336, "num_hidden_layers": 42, "num_attention_heads": 16,
                   "num_key_value_heads": 8, "head_dim": 256, "max_position_embeddings": 8192,
                   "rope_theta": 10000.0, "rms_norm_eps": 1e-06, "hidden_activation": "gelu_pytorch_tanh",
                   "query_pre_attn_scalar": 256, "sliding_window": 4096, "attn_logit_softcapping": 50.0,
                   "final_logit_softcapping": 30.0, "layer_wise": True, "start_layer": 8, "layer_sep": 1,
                   "tie_word_embeddings": False, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 1,
                   # Gemma-2's attention-logit soft-capping runs in eager attention only (transformers' advice for
                   # Gemma-2; FlagEmbedding's patched class gives NaN scores on padded batches under SDPA)
                   "attn_implementation": "eager"},
        "params": 9_241_831_424,
        "params_source": "gemma-2-9b's 9,241,705,984 (its config) plus 35 one-logit layer heads of 3,584; the model "
                         "card gives 9.24B",
        "source": "BAAI/bge-reranker-v2.5-gemma2-lightweight (gemma-2-9b body; FlagEmbedding 1.4.2 "
                  "CostWiseGemmaConfig; start_layer/layer_sep of its layer-wise heads as FlagEmbedding's "
                  "layer-wise rerankers use them, 8/1)",
        "revision": None,
        "head": "layer-wise one-logit heads; score read at cutoff layer 28 with token compression",
        "tokenizer": "gemma sentencepiece",
    },
    "jina-v2": {
        "class": "XLMRobertaForSequenceClassification",
        "config": {**_XLMR_COMMON, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "intermediate_size": 3072, "max_position_embeddings": 1026},
        "params": 278_437_633,
        "params_source": "counted from the config; the model card gives 278M and "
                         + MTEB.format(file="rerankers_custom.py") + " memory_usage_mb 531 (bf16 weights)",
        "source": "jinaai/jina-reranker-v2-base-multilingual config.json (XLMRobertaFlashConfig: XLM-R base sizes, "
                  "1026 positions)",
        "revision": "126747772a932960028d9f4dc93bd5d9c4869be4",
        "stand_in": "standard XLMRobertaForSequenceClassification with the same sizes (the real model's "
                    "flash-attention XLM-R ships as repository code, which rrbench never runs for a replica)",
        "head": "sequence-classification logit", "tokenizer": "xlm-roberta sentencepiece",
    },
    "jina-v3": {
        "class": "Qwen3Model",
        "config": {**_QWEN3_COMMON, "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
                   "num_hidden_layers": 28, "num_attention_heads": 16, "tie_word_embeddings": True,
                   "projector_sizes": [1024, 512, 512]},
        "params": 596_836_352,
        "params_source": MTEB.format(file="jina_models.py") + " (Qwen3-0.6B body plus a 1024-512-512 projector)",
        "source": "jinaai/jina-reranker-v3 (Qwen3-0.6B config; projector sizes from the parameter count)",
        "revision": "050e171c4f75dfec5b648ed8470a2475e5a30f30",
        "stand_in": "standard Qwen3Model plus rrbench's own listwise rerank() after the paper (documents and query "
                    "in one causal pass, cosine of projected hidden states at marker tokens); the real "
                    "model's repository code is never run",
        "head": "listwise: projector + cosine at per-document marker tokens", "tokenizer": "qwen2 BPE",
    },
    "mxbai-base-v1": {
        "class": "DebertaV2ForSequenceClassification",
        "config": {**_DEBERTA_V3_COMMON, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "intermediate_size": 3072, "pooler_hidden_size": 768},
        "params": 184_422_913,
        "params_source": MTEB.format(file="mixedbread_ai_models.py"),
        "source": "mixedbread-ai/mxbai-rerank-base-v1 config.json (DeBERTa-v3 base)",
        "revision": "800f24c113213a187e65bde9db00c15a2bb12738",
        "head": "sequence-classification logit (context pooler)", "tokenizer": "deberta-v3 sentencepiece",
    },
    "mxbai-large-v1": {
        "class": "DebertaV2ForSequenceClassification",
        "config": {**_DEBERTA_V3_COMMON, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                   "intermediate_size": 4096, "pooler_hidden_size": 1024},
        "params": 435_062_785,
        "params_source": MTEB.format(file="mixedbread_ai_models.py"),
        "source": "mixedbread-ai/mxbai-rerank-large-v1 config.json (DeBERTa-v3 large)",
        "revision": "98f655841d5caf0b16eaff79c2b4ca109d920d17",
        "head": "sequence-classification logit (context pooler)", "tokenizer": "deberta-v3 sentencepiece",
    },
    "mxbai-base-v2": {
        "class": "Qwen2ForCausalLM",
        "config": {**_QWEN2_5_COMMON, "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                   "num_attention_heads": 14, "num_key_value_heads": 2},
        "params": 494_032_768,
        "params_source": MTEB.format(file="mixedbread_ai_models.py"),
        "source": "mixedbread-ai/mxbai-rerank-base-v2 config.json (Qwen2.5-0.5B)",
        "revision": "3ea9d4dffa7d12a4f366be8e275c349de9fc9865",
        "head": "logit('1') - logit('0') at the last token", "tokenizer": "qwen2 BPE",
    },
    "mxbai-large-v2": {
        "class": "Qwen2ForCausalLM",
        "config": {**_QWEN2_5_COMMON, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                   "num_attention_heads": 12, "num_key_value_heads": 2},
        "params": 1_543_714_304,
        "params_source": MTEB.format(file="mixedbread_ai_models.py"),
        "source": "mixedbread-ai/mxbai-rerank-large-v2 config.json (Qwen2.5-1.5B)",
        "revision": "ca7e1ee484c37c0ddd8d178a9a5c33cec575c5e6",
        "head": "logit('1') - logit('0') at the last token", "tokenizer": "qwen2 BPE",
    },
    "qwen3-0.6b": {
        "class": "Qwen3ForCausalLM",
        "config": {**_QWEN3_COMMON, "vocab_size": 151669, "hidden_size": 1024, "intermediate_size": 3072,
                   "num_hidden_layers": 28, "num_attention_heads": 16, "tie_word_embeddings": True},
        "params": 595_776_512,
        "params_source": MTEB.format(file="qwen3_reranker.py"),
        "source": "Qwen/Qwen3-Reranker-0.6B config.json", "revision": "6e9e69830b95c52b5fd889b7690dda3329508de3",
        "head": "P(yes) from the yes/no logits at the last token", "tokenizer": "qwen2 BPE",
    },
    "qwen3-4b": {
        "class": "Qwen3ForCausalLM",
        "config": {**_QWEN3_COMMON, "vocab_size": 151669, "hidden_size": 2560, "intermediate_size": 9728,
                   "num_hidden_layers": 36, "num_attention_heads": 32, "tie_word_embeddings": True},
        "params": 4_021_784_576,
        "params_source": MTEB.format(file="qwen3_reranker.py"),
        "source": "Qwen/Qwen3-Reranker-4B config.json", "revision": "f16fc5d5d2b9b1d0db8280929242745d79794ef5",
        "head": "P(yes) from the yes/no logits at the last token", "tokenizer": "qwen2 BPE",
    },
    "qwen3-8b": {
        "class": "Qwen3ForCausalLM",
        "config": {**_QWEN3_COMMON, "vocab_size": 151669, "hidden_size": 4096, "intermediate_size": 12288,
                   "num_hidden_layers": 36, "num_attention_heads": 32, "tie_word_embeddings": False},
        "params": 8_188_548_096,
        "params_source": MTEB.format(file="qwen3_reranker.py"),
        "source": "Qwen/Qwen3-Reranker-8B config.json", "revision": "5fa94080caafeaa45a15d11f969d7978e087a3db",
        "head": "P(yes) from the yes/no logits at the last token", "tokenizer": "qwen2 BPE",
    },
    "minilm-l12": {
        "class": "BertForSequenceClassification",
        "config": {"model_type": "bert", "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 12,
                   "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512,
                   "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "pad_token_id": 0,
                   "num_labels": 1},
        "params": 33_360_385,
        "params_source": MTEB.format(file="rerankers_custom.py"),
        "source": "cross-encoder/ms-marco-MiniLM-L12-v2 config.json",
        "revision": "7b0235231ca2674cb8ca8f022859a6eba2b1c968",
        "head": "sequence-classification logit (pooler)", "tokenizer": "bert-base-uncased wordpiece",
        "real_tokenizer": "bert-base-uncased",
    },
    "gte-modernbert": {
        "class": "ModernBertForSequenceClassification",
        "config": {"model_type": "modernbert", "vocab_size": 50368, "hidden_size": 768, "num_hidden_layers": 22,
                   "num_attention_heads": 12, "intermediate_size": 1152, "max_position_embeddings": 8192,
                   "global_attn_every_n_layers": 3, "local_attention": 128, "global_rope_theta": 160000.0,
                   "local_rope_theta": 10000.0, "hidden_activation": "gelu", "norm_eps": 1e-05,
                   "norm_bias": False, "mlp_bias": False, "attention_bias": False, "classifier_bias": False,
                   "classifier_pooling": "mean", "pad_token_id": 50283, "bos_token_id": 50281,
                   "eos_token_id": 50282, "cls_token_id": 50281, "sep_token_id": 50282, "num_labels": 1},
        "params": 149_605_633,
        "params_source": "ModernBERT body 149,014,272 (" + MTEB.format(file="gte_models.py")
                         + ", gte-modernbert-base) plus the classification head (591,361); the card gives 149M",
        "source": "Alibaba-NLP/gte-reranker-modernbert-base config.json (ModernBERT base)", "revision": None,
        "head": "sequence-classification logit (mean pooling, dense head)", "tokenizer": "modernbert (OLMo) BPE",
    },
}


def architecture(spec_id: str) -> dict[str, Any] | None:
    """The architecture entry of a zoo id, or None for rerankers without one (plugins', local checkpoints)."""
    return ARCHITECTURES.get(spec_id)
