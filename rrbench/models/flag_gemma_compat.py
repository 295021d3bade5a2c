"""Run FlagEmbedding 1.4.2's CostWiseGemma model (bge-reranker-v2.5-gemma2-lightweight) under transformers 5.

FlagEmbedding 1.4.2 ships ``CostWiseGemmaModel`` / ``CostWiseGemmaForCausalLM``, written against transformers 4.x
(its loader asks for 4.46). They reuse transformers' ``Gemma2DecoderLayer``, whose contract changed in transformers 5:

- the layer no longer owns a rotary embedding: the model computes ``position_embeddings = (cos, sin)`` once and hands
  them to every layer (FlagEmbedding passes none, so the first layer fails unpacking ``None``);
- the layer no longer narrows the causal mask to the sliding window on its own: the model builds one mask per entry of
  ``config.layer_types`` ("full_attention" / "sliding_attention") and passes each layer its own;
- the layer returns a tensor, not a tuple (FlagEmbedding's ``layer_outputs[0]`` would take the first batch row);
- ``_tied_weights_keys`` must be a ``{target: source}`` dict: FlagEmbedding's list breaks ``save_pretrained``, and
  even building the model when its config ties embeddings (Gemma2's default);
- the default attention is sdpa for a class that says it supports it, and transformers 5's sdpa refuses Gemma2's
  attention-logit soft-capping, so the class must say it does not (like transformers' own ``Gemma2PreTrainedModel``).

:func:`patch_costwise_gemma` fixes these on FlagEmbedding's classes in place: a decoder loop of rrbench's own for
``CostWiseGemmaModel.forward`` that keeps FlagEmbedding's semantics (embedding scaling, layer-wise cut-off, token
compression through FlagEmbedding's own ``token_compress`` with positions restarting at 0 afterwards, right padding
only), plus the two class attributes. It is idempotent, does nothing under transformers 4 (FlagEmbedding's code runs
there as written) and refuses any FlagEmbedding other than :data:`TARGET_FLAGEMBEDDING`, whose code it was written
against, so a later FlagEmbedding release is never patched blindly. ``tests/models/test_zoo.py`` checks the patched model
against transformers' own ``Gemma2Model`` with the same weights.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from rrbench.util.errors import PluginError

TARGET_FLAGEMBEDDING = "1.4.2"


def _installed(dist: str) -> str:
    """Installed version of a distribution (a function so tests can pretend another version is installed)."""
    return importlib.metadata.version(dist)


def patch_needed() -> bool:
    """True under transformers 5, where FlagEmbedding 1.4.2's CostWiseGemma code does not run as written."""
    return int(_installed("transformers").split(".")[0]) >= 5


def patch_costwise_gemma() -> bool:
    """Make FlagEmbedding's CostWiseGemma classes run under transformers 5; True if the patch is in effect.

    Safe to call any number of times. Raises a one-line :class:`PluginError` when FlagEmbedding is not the version
    the patch was written for.
    """
    if not patch_needed():
        return False
    found = _installed("FlagEmbedding")
    if found != TARGET_FLAGEMBEDDING:
        raise PluginError(f"bge-gemma2-lightweight: rrbench's transformers-5 fix for FlagEmbedding's CostWiseGemma "
                          f"model was written for FlagEmbedding {TARGET_FLAGEMBEDDING}, but {found} is installed; "
                          f"install FlagEmbedding=={TARGET_FLAGEMBEDDING}")
    from FlagEmbedding.inference.reranker.decoder_only.models import gemma_model as gemma  # lazy: heavy: pulls in torch

    if gemma.CostWiseGemmaModel.forward is not costwise_model_forward:
        gemma.CostWiseGemmaModel.forward = costwise_model_forward
        gemma.CostWiseGemma2PreTrainedModel._supports_sdpa = False
        gemma.CostWiseGemmaForCausalLM._tied_weights_keys = property(_tied_weights_keys)
    return True


def _tied_weights_keys(model: Any) -> dict[str, str]:
    """transformers 5's ``{target: source}`` form. Layer-wise models have one score head per cut-off layer (a
    ``ModuleList``, no ``lm_head.weight``), so nothing is tied; the plain LM variant ties its head to the embeddings."""
    return {} if getattr(model.config, "layer_wise", False) else {"lm_head.weight": "model.embed_tokens.weight"}


def _rotary(model: Any) -> Any:
    """The model's rotary embedding, or a ``Gemma2RotaryEmbedding`` built from its config when it has none
    (FlagEmbedding 1.4.2's model has none: in transformers 4 each attention layer owned one). The built one is kept
    outside the module tree, so it adds nothing to the state dict and ``model.half()`` / ``.to(dtype)`` cannot round
    its fp32 frequencies (its forward moves them to the input's device on every call)."""
    rotary = getattr(model, "rotary_emb", None)
    if rotary is None:
        rotary = model.__dict__.get("_rrbench_rotary")
        if rotary is None:
            from transformers.models.gemma2.modeling_gemma2 import Gemma2RotaryEmbedding  # lazy: heavy: pulls in torch

            rotary = model.__dict__["_rrbench_rotary"] = Gemma2RotaryEmbedding(model.config)
    return rotary


def _layer_inputs(model: Any, hidden: Any, attention_mask: Any, position_ids: Any) -> tuple[dict[str, Any], Any]:
    """The per-layer-type 4D masks (built by transformers for the configured attention implementation, from the 2D
    padding mask) and the rotary ``(cos, sin)`` for the current sequence; recomputed after each token compression."""
    # lazy: heavy: pulls in torch
    from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

    builders = {"full_attention": create_causal_mask, "sliding_attention": create_sliding_window_causal_mask}
    masks = {kind: builders[kind](config=model.config, inputs_embeds=hidden, attention_mask=attention_mask,
                                  past_key_values=None, position_ids=position_ids)
             for kind in set(model.config.layer_types)}
    return masks, _rotary(model)(hidden, position_ids)


def costwise_model_forward(self: Any, input_ids: Any = None, attention_mask: Any = None, position_ids: Any = None,
                           past_key_values: Any = None, inputs_embeds: Any = None, use_cache: bool | None = None,
                           output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                           return_dict: bool | None = None, cache_position: Any = None,
                           compress_layer: list[int] | int | None = None, compress_ratio: int | None = None,
                           cutoff_layers: list[int] | int | None = None, query_lengths: Any = None,
                           prompt_lengths: Any = None) -> Any:
    """``CostWiseGemmaModel.forward`` for transformers 5 (same arguments and outputs as FlagEmbedding 1.4.2's).

    Semantics kept from FlagEmbedding: embeddings are scaled by sqrt(hidden_size); with ``config.layer_wise``, the
    normed hidden state *entering* layer ``k`` (i.e. after ``k`` layers) is recorded for every ``k`` in
    ``cutoff_layers`` together with the 2D mask it goes with, and the loop stops at the largest cut-off; before a layer
    in ``compress_layer`` (not layer 0) the passage tokens are mean-pooled ``compress_ratio`` to 1 by FlagEmbedding's
    ``token_compress`` (right padding only), after which positions restart at 0 and masks and rotary embeddings are
    rebuilt. ``cache_position`` and ``use_cache`` are accepted and ignored: FlagEmbedding never returned a cache, and
    compression changes the sequence under it. A KV cache and attention weights are refused.
    """
    import torch  # lazy: torch costs seconds at start-up

    # lazy: heavy: pulls in torch
    from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import (
        CostWiseModelOutputWithPast,
        token_compress,
    )

    config = self.config
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids and inputs_embeds")
    if past_key_values is not None or output_attentions:
        raise ValueError("CostWiseGemmaModel under transformers 5 (rrbench's patch) scores only: no past_key_values, "
                         "no output_attentions")
    return_dict = config.return_dict if return_dict is None else return_dict
    if inputs_embeds is None:
        inputs_embeds = self.embed_tokens(input_ids)
    batch, length = inputs_embeds.shape[:2]
    device = inputs_embeds.device
    if attention_mask is None:
        attention_mask = torch.ones((batch, length), dtype=torch.long, device=device)
    if attention_mask.dim() != 2:
        raise ValueError("CostWiseGemmaModel needs a 2D padding mask (token compression rewrites it)")
    if position_ids is None:
        position_ids = torch.arange(length, device=device).unsqueeze(0)

    layer_wise = bool(config.layer_wise)
    if layer_wise:  # the cut-off scores are read from the recorded hidden states
        output_hidden_states = True
    elif output_hidden_states is None:
        output_hidden_states = config.output_hidden_states
    compress_ratio = None if compress_ratio == 1 else compress_ratio
    if isinstance(compress_layer, int):
        compress_layer = [compress_layer]
    padded_left = bool(attention_mask[:, -1].sum() == batch) and bool(attention_mask.sum() != attention_mask.numel())
    query_lengths = torch.as_tensor([0] * batch if query_lengths is None else query_lengths, device=device)
    prompt_lengths = torch.as_tensor([0] * batch if prompt_lengths is None else prompt_lengths, device=device)
    if cutoff_layers is None:
        cutoff_layers = [config.num_hidden_layers]
    elif isinstance(cutoff_layers, int):
        cutoff_layers = [cutoff_layers]
    max_layer = max(cutoff_layers)

    # Gemma scales the embeddings by sqrt(hidden_size), rounded to the activation dtype as in transformers' Gemma2.
    hidden = inputs_embeds * torch.tensor(config.hidden_size ** 0.5, dtype=inputs_embeds.dtype)
    masks, position_embeddings = _layer_inputs(self, hidden, attention_mask, position_ids)
    hidden_states: list[Any] = []  # recorded only with output_hidden_states (always in layer-wise mode)
    all_masks: tuple[Any, ...] = ()
    for idx, layer in enumerate(self.layers):
        if layer_wise:
            if idx in cutoff_layers:
                hidden_states.append(self.norm(hidden))
                all_masks += (attention_mask,)
            if idx == max_layer:
                break
        elif output_hidden_states:
            hidden_states.append(hidden)
        if compress_layer is not None and compress_ratio is not None and idx != 0 and idx in compress_layer:
            if padded_left:
                raise ValueError("token compression needs right padding")
            hidden, attention_mask = token_compress(compress_ratio, hidden, attention_mask, query_lengths,
                                                    prompt_lengths)
            position_ids = torch.arange(hidden.shape[1], device=device).unsqueeze(0)
            masks, position_embeddings = _layer_inputs(self, hidden, attention_mask, position_ids)
        hidden = layer(hidden, position_embeddings=position_embeddings,
                       attention_mask=masks[config.layer_types[idx]], position_ids=position_ids)
    hidden = self.norm(hidden)
    if (not layer_wise and output_hidden_states) or (layer_wise and max_layer == config.num_hidden_layers):
        hidden_states.append(hidden)
        all_masks += (attention_mask,)

    all_hidden = tuple(hidden_states) if output_hidden_states else None
    if not return_dict:
        return tuple(v for v in (hidden, all_hidden) if v is not None)
    return CostWiseModelOutputWithPast(last_hidden_state=hidden, past_key_values=None, hidden_states=all_hidden,
                                       attentions=None, attention_masks=all_masks)
