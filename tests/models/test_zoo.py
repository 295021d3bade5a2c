"""The reranker zoo: specs, prompt templates (golden), every backend on a tiny model of its architecture class."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench.components.registry import get_registry
from rrbench.models.factory import load_reranker
from rrbench.models.prompts import MXBAI_V2, QWEN3, check_template
from rrbench.testing import zoo_models as T
from rrbench.util.errors import MissingWeightsError, PluginError, UnknownComponentError, UsageError

ZOO = {
    "bge-v2-m3": "BAAI/bge-reranker-v2-m3",
    "bge-gemma2-lightweight": "BAAI/bge-reranker-v2.5-gemma2-lightweight",
    "jina-v2": "jinaai/jina-reranker-v2-base-multilingual",
    "jina-v3": "jinaai/jina-reranker-v3",
    "mxbai-base-v1": "mixedbread-ai/mxbai-rerank-base-v1",
    "mxbai-large-v1": "mixedbread-ai/mxbai-rerank-large-v1",
    "mxbai-base-v2": "mixedbread-ai/mxbai-rerank-base-v2",
    "mxbai-large-v2": "mixedbread-ai/mxbai-rerank-large-v2",
    "qwen3-0.6b": "Qwen/Qwen3-Reranker-0.6B",
    "qwen3-4b": "Qwen/Qwen3-Reranker-4B",
    "qwen3-8b": "Qwen/Qwen3-Reranker-8B",
    "minilm-l12": "cross-encoder/ms-marco-MiniLM-L-12-v2",
    "gte-modernbert": "Alibaba-NLP/gte-reranker-modernbert-base",
}
QUERIES = ["aspirin prevents heart attacks"] * 3 + ["caffeine affects sleep"] * 2
DOCS = ["Aspirin reduces the risk of heart attack in adults.", "The weather was sunny on the day of the trial.",
        "Daily aspirin lowered myocardial infarction rates by a quarter.", "Tea was not studied.",
        "Sleep quality decreased with late caffeine intake."]


@pytest.mark.parametrize("alias,hub_id", sorted(ZOO.items()))
def test_every_alias_and_hub_id_resolves_to_a_complete_spec(alias, hub_id):
    registry = get_registry()
    spec = registry.get("rerankers", alias).spec
    assert registry.get("rerankers", hub_id).spec is spec
    assert spec.hub_id == hub_id
    assert spec.score_kind in ("logit", "probability", "log-odds", "cosine")
    assert spec.license and spec.params and spec.max_length
    assert spec.revision is None or len(spec.revision) == 40
    if spec.revision is None:
        assert "unpinned" in spec.description
    assert spec.interaction == ("listwise" if alias == "jina-v3" else "pointwise")


def test_unknown_alias_suggests_close_match():
    with pytest.raises(UnknownComponentError, match="Did you mean: qwen3-0.6b"):
        load_reranker("qwen3-0.6")


def test_qwen3_prompt_is_the_model_cards_string():
    text = QWEN3.render("what is aspirin?", "Aspirin is a drug.", QWEN3.instructions["web-search"])
    assert text == (
        '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct '
        'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
        '<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n'
        '<Query>: what is aspirin?\n<Document>: Aspirin is a drug.<|im_end|>\n<|im_start|>assistant\n'
        '<think>\n\n</think>\n\n')


def test_mxbai_v2_prompt_with_and_without_instruction():
    plain = MXBAI_V2.render("q", "d", None)
    assert plain == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                     "<|im_end|>\n<|im_start|>user\nquery: q\ndocument: d\nYou are a search relevance expert who "
                     "evaluates how well documents match search queries. For each query-document pair, carefully "
                     "analyze the semantic relationship between them, then provide your binary relevance judgment "
                     "(0 for not relevant, 1 for relevant).\nRelevance:<|im_end|>\n<|im_start|>assistant\n")
    assert "user\ninstruction: find it\nquery: q\ndocument: d\n" in MXBAI_V2.render("q", "d", "find it")


@pytest.mark.parametrize("template", ["{document} only", "no placeholders", "{query} {document} {oops}"])
def test_template_without_placeholders_is_rejected(template):
    with pytest.raises(UsageError, match="template"):
        check_template(template, "qwen3-0.6b")


def test_missing_weights_fail_with_one_line(cli, mini_task):
    result = cli("run", "--task", str(mini_task), "--reranker", "bge-v2-m3", "--no-cache")
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("rrbench: error")]
    assert len(error) == 1 and "BAAI/bge-reranker-v2-m3" in error[0] and "--model-path" in error[0]


# -- backends on tiny models -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo-models")
    return {
        "xlm-roberta": T.make_tiny_classifier(root / "xlmr", "xlm-roberta"),
        "deberta-v2": T.make_tiny_classifier(root / "deberta", "deberta-v2"),
        "modernbert": T.make_tiny_classifier(root / "modernbert", "modernbert"),
        "qwen3": T.make_tiny_qwen3(root / "qwen3"),
        "qwen2": T.make_tiny_qwen2(root / "qwen2"),
        "listwise": T.make_tiny_listwise(root / "listwise"),
    }


def _reference_classifier(path, queries, docs):
    """A plain per-pair loop over the HF model: what the engine must reproduce."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.inference_mode():
        return np.array([float(model(**tok(q, d, return_tensors="pt")).logits[0, 0]) for q, d in zip(queries, docs)])


@pytest.mark.parametrize("alias,arch", [("bge-v2-m3", "xlm-roberta"), ("mxbai-base-v1", "deberta-v2"),
                                        ("gte-modernbert", "modernbert"), ("minilm-l12", "xlm-roberta")])
def test_cross_encoder_backend_scores_tiny_models_like_a_plain_loop(models, alias, arch):
    reranker = load_reranker(alias, model_path=str(models[arch]), batch_size=2, device="cpu")
    scores = reranker.score_pairs(QUERIES, DOCS)
    np.testing.assert_allclose(scores, _reference_classifier(str(models[arch]), QUERIES, DOCS), atol=2e-5)
    assert reranker.score_kind == "logit" and reranker.weights_source == "local-path"


def test_flag_implementation_agrees_with_sentence_transformers(models):
    st = load_reranker("bge-v2-m3", model_path=str(models["xlm-roberta"]), device="cpu")
    flag = load_reranker("bge-v2-m3", model_path=str(models["xlm-roberta"]), device="cpu", implementation="flag")
    np.testing.assert_allclose(flag.score_pairs(QUERIES, DOCS), st.score_pairs(QUERIES, DOCS), atol=2e-5)


def test_jina_v2_requires_explicit_remote_code_opt_in(models):
    with pytest.raises(UsageError, match="--trust-remote-code"):
        load_reranker("jina-v2", model_path=str(models["xlm-roberta"]), device="cpu")
    with pytest.warns(UserWarning, match="run its own Python code"):
        reranker = load_reranker("jina-v2", model_path=str(models["xlm-roberta"]), device="cpu",
                                 trust_remote_code=True)
    assert np.isfinite(reranker.score_pairs(QUERIES, DOCS)).all()


def _reference_yes_no(path, prompts, yes, no):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    y, n = tok.convert_tokens_to_ids(yes), tok.convert_tokens_to_ids(no)
    out = []
    with torch.inference_mode():
        for prompt in prompts:
            logits = model(**tok(prompt, return_tensors="pt", add_special_tokens=False)).logits[0, -1]
            out.append(float(logits[y] - logits[n]))
    return np.array(out)


def test_qwen3_backend_is_p_yes_of_the_full_model_on_the_official_prompt(models):
    reranker = load_reranker("qwen3-0.6b", model_path=str(models["qwen3"]), batch_size=2, device="cpu",
                             instruction="evidence")
    assert reranker.instruction == QWEN3.instructions["evidence"]
    scores = reranker.score_pairs(QUERIES, DOCS)
    margins = _reference_yes_no(str(models["qwen3"]), [reranker.prompt(q, d) for q, d in zip(QUERIES, DOCS)],
                                "yes", "no")
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-margins)), atol=1e-5)
    assert reranker.score_kind == "probability"


def test_mxbai_v2_backend_is_logit_1_minus_logit_0(models):
    reranker = load_reranker("mxbai-base-v2", model_path=str(models["qwen2"]), batch_size=3, device="cpu")
    margins = _reference_yes_no(str(models["qwen2"]), [reranker.prompt(q, d) for q, d in zip(QUERIES, DOCS)],
                                "1", "0")
    np.testing.assert_allclose(reranker.score_pairs(QUERIES, DOCS), margins, atol=1e-5)


def test_free_text_instruction_and_custom_template_change_the_prompt(models):
    reranker = load_reranker("qwen3-0.6b", model_path=str(models["qwen3"]), device="cpu",
                             instruction="Is this evidence?", template="Q={query} D={document} I={instruction}")
    assert "Q=q D=d I=Is this evidence?" in reranker.prompt("q", "d")
    with pytest.raises(UsageError, match=r"\{query\}"):
        load_reranker("qwen3-0.6b", model_path=str(models["qwen3"]), device="cpu", template="{document}")


def test_listwise_backend_returns_one_score_per_candidate_in_input_order(models):
    reranker = load_reranker("jina-v3", model_path=str(models["listwise"]), device="cpu", trust_remote_code=True,
                             group_size=16)
    docs = DOCS + ["Coffee consumption is associated with alertness."]
    scores = reranker.score_list(QUERIES[0], docs)
    assert scores.shape == (len(docs),) and np.isfinite(scores).all()
    # rerank() returns results sorted by score; score_list must map each back to its document's input position
    direct = {d: s for d, s in zip(docs, scores)}
    raw = {r["document"]: r["relevance_score"] for r in reranker.model.rerank(QUERIES[0], docs)}
    assert all(abs(direct[d] - raw[d]) < 1e-6 for d in docs)


def test_listwise_group_size_and_packing(models):
    from rrbench.models.listwise import plan_groups

    assert [g.tolist() for g in plan_groups(5, 2, "sequential")] == [[0, 1], [2, 3], [4]]
    assert [g.tolist() for g in plan_groups(5, 2, "strided")] == [[0, 3], [1, 4], [2]]
    reranker = load_reranker("jina-v3", model_path=str(models["listwise"]), device="cpu", trust_remote_code=True,
                             group_size=2, packing="strided")
    assert reranker.score_list(QUERIES[0], DOCS).shape == (len(DOCS),)
    for bad in (-1, 0, "many"):
        with pytest.raises(UsageError, match="group_size"):
            load_reranker("jina-v3", model_path=str(models["listwise"]), device="cpu", trust_remote_code=True,
                          group_size=bad)


def test_lightweight_gemma_knobs_are_validated_and_other_flagembedding_versions_are_refused(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="compress_ratio"):
        load_reranker("bge-gemma2-lightweight", model_path=str(tmp_path), compress_ratio=3)
    with pytest.raises(UsageError, match="cutoff_layers"):
        load_reranker("bge-gemma2-lightweight", model_path=str(tmp_path), cutoff_layers="a,b")
    from rrbench.models import flag_gemma_compat as compat
    if compat.patch_needed():  # transformers 5: only the FlagEmbedding version the patch was written for is patched
        from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import CostWiseGemmaModel

        assert compat.patch_costwise_gemma() and compat.patch_costwise_gemma()  # idempotent
        assert CostWiseGemmaModel.forward is compat.costwise_model_forward
        real = compat._installed
        monkeypatch.setattr(compat, "_installed", lambda dist: "1.5.0" if dist == "FlagEmbedding" else real(dist))
        with pytest.raises(PluginError, match=r"written for FlagEmbedding 1\.4\.2, but 1\.5\.0 is installed") as info:
            load_reranker("bge-gemma2-lightweight", model_path=str(tmp_path), cutoff_layers=[2])
        assert "\n" not in str(info.value)


# -- bge-gemma2-lightweight: FlagEmbedding's CostWiseGemma model (patched by rrbench under transformers 5) ----------
@pytest.fixture(scope="module")
def gemma_path(tmp_path_factory):
    return T.make_tiny_lightweight_gemma(tmp_path_factory.mktemp("zoo-gemma") / "gemma")


@pytest.mark.parametrize("knobs", [dict(cutoff_layers=[2], compress_layers=[2], compress_ratio=2, dtype="bfloat16"),
                                   dict(cutoff_layers=[4], compress_layers=[2], compress_ratio=2),
                                   dict(cutoff_layers=[2, 4], compress_layers=[3], compress_ratio=4)])
def test_lightweight_gemma_backend_scores_a_tiny_model(gemma_path, knobs):
    import torch

    reranker = load_reranker("bge-gemma2-lightweight", model_path=str(gemma_path), batch_size=2, device="cpu",
                             **knobs)
    # --dtype is honoured on CPU: fp32 by default (through FlagEmbedding's use_fp16 flag, which it drops on CPUs)
    expected = torch.bfloat16 if knobs.get("dtype") == "bfloat16" else torch.float32
    assert reranker.flag.model.dtype == expected and reranker.describe()["effective_dtype"] == str(expected)[6:]
    scores = reranker.score_pairs(QUERIES, DOCS)
    assert scores.shape == (len(DOCS),) and np.isfinite(scores).all()
    assert len(set(scores.tolist())) > 1
    np.testing.assert_array_equal(reranker.score_pairs(QUERIES, DOCS), scores)


def _costwise_fp32(path):
    from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import CostWiseGemmaForCausalLM

    from rrbench.models.flag_gemma_compat import patch_costwise_gemma

    patch_costwise_gemma()
    return CostWiseGemmaForCausalLM.from_pretrained(path).float().eval()


def _plain_gemma2(costwise, layers, layer_types=None):
    """transformers' own Gemma2Model holding CostWiseGemma's decoder layers ``layers`` (renumbered from 0), its
    embeddings and final norm, eager attention like the CostWise model."""
    from transformers import Gemma2Config, Gemma2Model

    own = {"model_type", "architectures", "layer_wise", "start_layer", "layer_sep"}
    values = {k: v for k, v in costwise.config.to_dict().items() if k not in own}
    values.update(num_hidden_layers=len(layers),
                  layer_types=layer_types or [costwise.config.layer_types[i] for i in layers])
    model = Gemma2Model(Gemma2Config.from_dict(values, attn_implementation="eager")).eval()
    state = {}
    for name, tensor in costwise.model.state_dict().items():
        if name.startswith("layers."):
            index, rest = name[len("layers."):].split(".", 1)
            if int(index) in layers:
                state[f"layers.{layers.index(int(index))}.{rest}"] = tensor
        else:
            state[name] = tensor
    model.load_state_dict(state, strict=True)
    return model


def _batch(vocab, lengths, seed=0):
    """Right-padded random token ids (FlagEmbedding pads right) with the matching 2D mask."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros((len(lengths), max(lengths)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, vocab, (n,), generator=generator)
        mask[row, :n] = 1
    return ids, mask


def _last_token(values, mask):
    """The value at each row's last real token, as FlagEmbedding pools right-padded scores."""
    import torch

    return values[torch.arange(values.shape[0]), mask.sum(dim=1) - 1]


def _softcap(logits, cap):
    import torch

    return logits if cap is None else torch.tanh(logits / cap) * cap


def test_patched_costwise_gemma_matches_transformers_gemma2_at_each_cutoff_layer(gemma_path):
    """No compression: the hidden state (and score) CostWiseGemma records at cut-off layer k must be what transformers'
    own Gemma2Model computes with the same weights through its first k layers, then the same score head. Sequences
    are longer than the tiny model's sliding window, with padding, so rotary positions, padding masks and the per-layer
    sliding/full masks all take part."""
    import torch

    costwise = _costwise_fp32(gemma_path)
    config = costwise.config
    ids, mask = _batch(config.vocab_size, [40, 29, 17])
    valid = mask.bool()
    with torch.inference_mode():
        out = costwise(input_ids=ids, attention_mask=mask, cutoff_layers=[2, 4], compress_ratio=1,
                       compress_layer=[2])
        assert len(out.hidden_states) == len(out.logits) == 2
        for slot, k in enumerate([2, 4]):
            hidden = _plain_gemma2(costwise, list(range(k)))(input_ids=ids, attention_mask=mask).last_hidden_state
            torch.testing.assert_close(out.hidden_states[slot][valid], hidden[valid], rtol=0, atol=1e-5)
            score = _softcap(costwise.lm_head[slot].linear_head(hidden), config.final_logit_softcapping)[..., 0]
            ours = _last_token(out.logits[slot], mask)
            torch.testing.assert_close(ours, _last_token(score, mask), rtol=0, atol=1e-5)
        # the inputs do exercise the sliding window: all-full-attention layers give clearly different states
        full = _plain_gemma2(costwise, [0, 1, 2, 3], ["full_attention"] * 4)(input_ids=ids, attention_mask=mask)
        assert float((out.hidden_states[1][valid] - full.last_hidden_state[valid]).abs().max()) > 1e-3


def test_patched_costwise_gemma_compression_restarts_positions_and_masks(gemma_path):
    """With compression before layer 2: layers 0-1 on the full sequence, FlagEmbedding's own token_compress, then
    layers 2-3 on the shorter sequence with positions from 0 and its new padding mask (transformers' Gemma2Model fed
    the compressed states as inputs_embeds) must give the state CostWiseGemma records at cut-off 4."""
    import torch
    from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import token_compress

    costwise = _costwise_fp32(gemma_path)
    ids, mask = _batch(costwise.config.vocab_size, [40, 33, 21], seed=1)
    query_lengths, prompt_lengths = [6, 9, 4], [5, 5, 5]
    with torch.inference_mode():
        out = costwise(input_ids=ids, attention_mask=mask, cutoff_layers=[4], compress_ratio=2, compress_layer=[2],
                       query_lengths=query_lengths, prompt_lengths=prompt_lengths)
        first = _plain_gemma2(costwise, [0, 1])
        captured = []
        first.layers[-1].register_forward_hook(lambda module, args, output: captured.append(output))
        first(input_ids=ids, attention_mask=mask)
        hidden, new_mask = token_compress(2, captured[0], mask, torch.tensor(query_lengths),
                                          torch.tensor(prompt_lengths))
        assert new_mask.shape[1] < mask.shape[1]
        rest = _plain_gemma2(costwise, [2, 3])(inputs_embeds=hidden, attention_mask=new_mask).last_hidden_state
        torch.testing.assert_close(out.attention_masks[0], new_mask)
        valid = new_mask.bool()
        torch.testing.assert_close(out.hidden_states[0][valid], rest[valid], rtol=0, atol=1e-5)


def test_missing_weights_error_from_the_api():
    with pytest.raises(MissingWeightsError, match="Qwen/Qwen3-Reranker-4B"):
        load_reranker("qwen3-4b")
