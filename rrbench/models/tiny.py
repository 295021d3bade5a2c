"""Tiny, randomly initialised models built on the spot (no network): what ``rrbench check`` loads a plugin's loss
onto, and what tests and plugin authors rank the mini task with.

Production code needs them (``rrbench check --kind losses``), so they live in the package proper;
``rrbench.testing`` re-exports them. The zoo-architecture builders used only by rrbench's own tests stay in
``rrbench.testing.zoo_models``.
"""

from __future__ import annotations

from pathlib import Path

from rrbench.tasks.mini import mini_vocab


def make_tiny_bert(directory: str | Path, seed: int = 0, num_labels: int = 1) -> Path:
    """A 2-layer, hidden-64 BertForSequenceClassification with its own vocabulary: loads as a CrossEncoder."""
    import torch  # lazy: torch costs seconds at start-up
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer  # lazy: heavy: pulls in torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(mini_vocab()) + "\n", encoding="utf-8")
    # transformers 5: BertTokenizer is the fast (tokenizers) one, and it takes the vocabulary as `vocab` (a path or
    # dict); `vocab_file` is silently ignored there, which would map every word to [UNK]
    tokenizer = BertTokenizer(vocab=str(vocab_file), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)
    config.num_labels = num_labels  # a PretrainedConfig property (sets id2label); not a BertConfig argument
    model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_tiny_bi_encoder(directory: str | Path, seed: int = 0) -> Path:
    """A tiny BERT wrapped as a SentenceTransformer (mean pooling): a stand-in dense model for tests."""
    from sentence_transformers import SentenceTransformer  # lazy: heavy: pulls in torch
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer  # lazy: heavy: pulls in torch

    directory = Path(directory)
    base = make_tiny_bert(directory.with_name(directory.name + "-base"), seed=seed)
    word = Transformer(str(base), max_seq_length=64)
    pooling = Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(directory))
    return directory


def make_tiny_causal_lm(directory: str | Path, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 Qwen3ForCausalLM with a word-level tokenizer holding ``yes`` and ``no`` (left padding)."""
    import torch  # lazy: torch costs seconds at start-up
    from tokenizers import Tokenizer, models, pre_tokenizers  # lazy: heavy
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM  # lazy: heavy: pulls in torch

    words = list(dict.fromkeys(["<pad>", "<unk>", "yes", "no", "true", "false",
                                *[w for w in mini_vocab() if not w.startswith("[")]]))
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                        padding_side="left")
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                         pad_token_id=0, tie_word_embeddings=True)
    directory = Path(directory)
    Qwen3ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
