"""Builders for training tests: a mini task with a train split, and a tiny causal LM with a yes/no vocabulary.

Kept in the package (not in tests/) so plugin authors testing their own losses can reuse them offline.
"""

from __future__ import annotations

from pathlib import Path

from rrbench.testing.fixtures import MINI_POSTS, MINI_QRELS, MINI_QUERIES, write_task

#: q1, q3 (has evidence) and q4 (no evidence) train; q2, q5 (has evidence) and q6 (no evidence) select.
MINI_TRAIN_SPLITS = {"q1": "train", "q3": "train", "q4": "train", "q2": "dev_select", "q5": "dev_select",
                     "q6": "dev_select"}


def make_train_task(directory: str | Path) -> Path:
    """The fixture's mini task, split into ``train`` and ``dev_select`` (each with a no-evidence query)."""
    return write_task(directory, MINI_POSTS, MINI_QUERIES, MINI_QRELS, splits=MINI_TRAIN_SPLITS)


def make_tiny_causal_lm(directory: str | Path, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 Qwen3ForCausalLM with a word-level tokenizer holding ``yes`` and ``no`` (left padding)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    from rrbench.testing.fixtures import _vocab

    words = list(dict.fromkeys(["<pad>", "<unk>", "yes", "no", "true", "false",
                                *[w for w in _vocab() if not w.startswith("[")]]))
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
