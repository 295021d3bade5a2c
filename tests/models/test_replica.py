"""Architecture replicas of the zoo: real-size parameter counts on the meta device, and every architecture's scoring
path on a tiny replica (random weights: these tests check that the path runs, never what it scores)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rrbench.components.registry import get_registry
from rrbench.models.architectures import ARCHITECTURES
from rrbench.models.replica import (
    SPEED_ONLY,
    architecture_for,
    calibrate_chars_per_token,
    count_chunks,
    count_parameters,
    length_tokenizer,
    load_replica,
    replica_spec,
)
from rrbench.models.zoo import zoo_specs
from rrbench.util.errors import UsageError

QUERIES = ["aspirin prevents heart attacks"] * 3 + ["caffeine affects sleep"] * 2
DOCS = ["Aspirin reduces the risk of heart attack in adults.", "The weather was sunny on the day of the trial.",
        "Daily aspirin lowered myocardial infarction rates (by a quarter).", "Tea was not studied.",
        "Sleep quality decreased with late caffeine intake."]


def tiny(spec_id: str) -> dict:
    """Overrides that shrink an architecture to a test-sized model of the same class and wiring."""
    config = ARCHITECTURES[spec_id]["config"]
    out = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    if "num_key_value_heads" in config:
        out["num_key_value_heads"] = 1
    if "head_dim" in config:
        out["head_dim"] = 16
    if "pooler_hidden_size" in config:
        out["pooler_hidden_size"] = 32
    if spec_id != "minilm-l12":  # MiniLM keeps bert-base-uncased's real vocabulary
        out["vocab_size"] = 512
    if spec_id == "bge-gemma2-lightweight":
        out.update(num_hidden_layers=4, start_layer=2, layer_sep=1, sliding_window=16)
    if spec_id == "gte-modernbert":
        out.update(global_attn_every_n_layers=2, local_attention=16)
    return out


def test_every_zoo_model_has_an_architecture_with_its_source():
    ids = {spec.id for spec in zoo_specs()}
    assert ids == set(ARCHITECTURES)
    for spec_id, arch in ARCHITECTURES.items():
        assert arch["source"] and arch["params_source"] and arch["class"], spec_id
        assert arch["revision"] is None or len(arch["revision"]) == 40, spec_id
    remote = {spec.id for spec in zoo_specs() if spec.requires_remote_code}
    assert remote == {k for k, a in ARCHITECTURES.items() if a.get("stand_in")}  # every remote-code model says so


@pytest.mark.parametrize("spec_id", sorted(ARCHITECTURES))
def test_real_size_parameters_on_the_meta_device_match_the_published_count(spec_id):
    arch = ARCHITECTURES[spec_id]
    counted = count_parameters(arch)
    assert abs(counted - arch["params"]) <= 0.01 * arch["params"], (spec_id, counted, arch["params"])


@pytest.mark.parametrize("spec_id", sorted(ARCHITECTURES))
def test_a_tiny_replica_of_every_architecture_runs_its_scoring_path(spec_id, torch_one_thread):
    extra = {"cutoff_layers": [3], "compress_layers": [2]} if spec_id == "bge-gemma2-lightweight" else {}
    reranker = load_replica(spec_id, overrides=tiny(spec_id), texts=QUERIES + DOCS, device="cpu", batch_size=4,
                            **extra)
    assert reranker.weights_source == SPEED_ONLY
    info = json.loads((__import__("pathlib").Path(reranker.weights_path) / "replica.json").read_text())
    assert info["zoo_id"] == spec_id and "speed" in info["note"]
    if reranker.interaction == "listwise":
        scores = np.concatenate([reranker.score_list(QUERIES[0], DOCS[:3]), reranker.score_list(QUERIES[3], DOCS[3:])])
    else:
        scores = reranker.score_pairs(QUERIES, DOCS)
    assert scores.shape == (5,) and np.isfinite(scores).all()
    spec = get_registry().get("rerankers", spec_id).spec
    if spec.score_kind == "probability":
        assert ((scores > 0) & (scores < 1)).all()


def test_replicas_of_remote_code_models_never_need_it():
    spec = replica_spec(get_registry().get("rerankers", "jina-v2").spec)
    assert not spec.requires_remote_code and spec.hub_id is None and SPEED_ONLY in spec.description
    listwise = replica_spec(get_registry().get("rerankers", "jina-v3").spec)
    assert listwise.loader == "rrbench.models.listwise:ListwiseReplica"


def test_generative_replica_keeps_the_prompt_and_single_answer_tokens():
    reranker = load_replica("mxbai-base-v2", overrides=tiny("mxbai-base-v2"), texts=QUERIES + DOCS, device="cpu")
    # the qwen2 model type makes transformers rebuild a byte-level BPE; the replica binds its own length tokenizer
    assert type(reranker.tokenizer).__name__ == "TokenizersBackend"
    assert reranker.tokenizer.convert_ids_to_tokens(reranker.prefix_ids)[0] == "<|im_start|>"
    assert reranker.yes_id != reranker.no_id
    features = reranker._encode(QUERIES[:1], DOCS[:1])
    body = count_chunks(QUERIES[0], 7) + count_chunks(DOCS[0], 7)
    assert len(features[0]["input_ids"]) >= body + len(reranker.prefix_ids) + len(reranker.suffix_ids)


def test_length_tokenizer_counts_and_pair_templates():
    assert count_chunks("Dicer-2 generates siRNAs.", 7) == len(["Dicer", "-", "2", "generat", "es", "siRNAs", "."])
    roberta = length_tokenizer("xlm-roberta", 1000, 7, ["hello world"])
    ids = roberta(["hello"], ["world"])["input_ids"][0]
    assert roberta.convert_ids_to_tokens(ids) == ["<s>", "hello", "</s>", "</s>", "world", "</s>"]
    bert = length_tokenizer("bert", 1000, 7, ["hello world"])
    enc = bert(["hello"], ["world"])
    assert enc["token_type_ids"][0] == [0, 0, 0, 1, 1]
    chat = length_tokenizer("qwen2", 1000, 7)
    assert len(chat("<|im_start|>yes<|im_end|>", add_special_tokens=False)["input_ids"]) == 3


def test_calibration_picks_the_chunk_closest_to_the_reference_counts():
    texts = ["microRNAs regulate transcription", "a b c"]
    assert calibrate_chars_per_token(texts, [count_chunks(t, 5) for t in texts]) == 5


def test_a_reranker_without_an_architecture_is_refused_with_one_line():
    spec = get_registry().get("rerankers", "cross-encoder").spec
    with pytest.raises(UsageError, match="no architecture to replicate"):
        architecture_for(spec)
