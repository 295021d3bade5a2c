"""Generative yes/no rerankers (Qwen3-Reranker, mxbai-rerank-v2): a causal LM reads a fixed prompt and the score comes
from the logits of two answer tokens at the last position.

Qwen3-Reranker: P(yes) = softmax([logit_no, logit_yes])[1] = sigmoid(logit_yes - logit_no), as on its model card
(``score_kind="probability"``). mxbai-rerank-v2: logit("1") - logit("0") (``score_kind="log-odds"``).

Why not ``model(**inputs).logits``: that materialises a (batch x length x vocabulary) tensor, 151k columns for Qwen,
to read two numbers. The backend runs the decoder body, gathers the hidden state at each row's last real token (the
engine pads on the right, so a row's score never depends on its batch) and multiplies it by the two rows of the output
embedding only: exactly the same logits, a fraction of the compute.

The prompt is built as ``prefix + body + suffix`` (:mod:`rrbench.models.prompts`); only the body (instruction, query,
document) is truncated to fit ``max_length``, like the reference implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from rrbench.components.bases import ModelOptions, PointwiseReranker
from rrbench.components.specs import RerankerSpec
from rrbench.models.cross_encoder import check_remote_code, truthy
from rrbench.models.engine import InferenceEngine, autocast_dtype_for
from rrbench.models.loading import clipped_max_length, pick_device, torch_dtype
from rrbench.models.memory import batch_plan, plan_before_load
from rrbench.models.prompts import FORMATS, PromptFormat, check_template, resolve_instruction
from rrbench.models.resolve import resolve_weights
from rrbench.util.errors import UsageError


def single_token_id(tokenizer: Any, text: str, model: str) -> int:
    """The id of an answer token; it must be one token, or the score would compare prefixes of words."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise UsageError(f"reranker {model}: answer token {text!r} is {len(ids)} tokens in this tokenizer; "
                         "the yes/no score needs a single token")
    return int(ids[0])


class GenerativeReranker(PointwiseReranker):
    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        # the weights first: missing ones are one line within seconds, before torch and transformers load
        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        import torch  # lazy: torch costs seconds at start-up
        from transformers import AutoModelForCausalLM, AutoTokenizer  # lazy: heavy: pulls in torch

        name = str(options.extra.get("prompt_format", ""))
        if name not in FORMATS:
            raise UsageError(f"reranker {spec.id}: option prompt_format must be one of {', '.join(FORMATS)}, "
                             f"got {name!r}")
        self.format: PromptFormat = FORMATS[name]
        template = options.extra.get("template")
        self.template = check_template(str(template), spec.id) if template is not None else None
        self.instruction = resolve_instruction(options.instruction, self.format.instructions, spec.instruction,
                                               spec.id)
        check_remote_code(spec, options)
        self.weights_path = str(path)
        self.device = pick_device(options.device)
        if options.dtype == "int8":
            raise UsageError(f"reranker {spec.id}: --dtype int8 is supported for cross-encoders only")
        autocast_dtype_for(options.dtype, self.device)
        self.max_length = options.max_length or spec.max_length or 8192
        memory = plan_before_load(path, options.dtype, self.device, self.max_length, f"reranker {spec.id}",
                                  enabled=truthy(options.extra.get("memory_plan", True)))
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=options.trust_remote_code)
        # cast to Any: transformers declares PreTrainedModel.to through functools.wraps(torch.nn.Module.to), which
        # type checkers read as an unbound function (every .to(device) call would be flagged)
        self.model: Any = cast(Any, AutoModelForCausalLM.from_pretrained(
            str(path), dtype=torch_dtype(options.dtype, self.device), trust_remote_code=options.trust_remote_code))
        self.model.to(self.device).eval()
        # truncation never passes the model's positions (max_length itself stays what was asked for: fingerprints)
        self.token_limit = clipped_max_length(self.max_length, None, self.model.config, f"reranker {spec.id}",
                                              warn=options.max_length is not None) or self.max_length
        self.engine = InferenceEngine(self._forward, pad_token_id=0, batch_size=options.batch_size,
                                      device=self.device, token_budget=options.extra.get("token_budget"),
                                      name=f"reranker {spec.id}", memory_plan=batch_plan(memory, self.device))
        self.bind_tokenizer(self.tokenizer)
        self._torch = torch

    def bind_tokenizer(self, tokenizer: Any) -> None:
        """Use ``tokenizer``: the answer-token ids, the fixed prompt parts and the pad id all come from it (a replica
        swaps in its length tokenizer where transformers would rebuild a real-vocabulary class around it)."""
        self.tokenizer = tokenizer
        model_id = self.spec.id
        self.yes_id = single_token_id(tokenizer, self.format.yes_token, model_id)
        self.no_id = single_token_id(tokenizer, self.format.no_token, model_id)
        self.prefix_ids = self._ids(self.format.prefix)
        self.suffix_ids = self._ids(self.format.suffix)
        self.body_budget = self.token_limit - len(self.prefix_ids) - len(self.suffix_ids)
        if self.body_budget < 8:
            raise UsageError(f"reranker {model_id}: --max-length {self.token_limit} leaves no room for the query and "
                             f"document after the {len(self.prefix_ids) + len(self.suffix_ids)}-token prompt")
        head = self.model.get_output_embeddings().weight
        self.answer_rows = head[[self.yes_id, self.no_id]].detach()
        bias = getattr(self.model.get_output_embeddings(), "bias", None)
        self.answer_bias = bias[[self.yes_id, self.no_id]].detach() if bias is not None else None
        pad = tokenizer.pad_token_id
        self.engine.pad_token_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, query: str, document: str) -> str:
        """The exact prompt string for one pair (before truncation)."""
        return self.format.render(query, document, self.instruction, self.template)

    def _encode(self, queries: Sequence[str], documents: Sequence[str]) -> list[dict[str, list[int]]]:
        bodies = [self.format.render_body(q, d, self.instruction, self.template) for q, d in zip(queries, documents, strict=True)]
        enc = self.tokenizer(bodies, add_special_tokens=False, truncation=True, max_length=self.body_budget,
                             padding=False)
        return [{"input_ids": self.prefix_ids + ids + self.suffix_ids} for ids in enc["input_ids"]]

    def _forward(self, inputs: dict[str, Any]) -> Any:
        torch = self._torch
        body = self.model.get_decoder()
        hidden = body(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        last = inputs["attention_mask"].sum(dim=1) - 1
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        logits = h.float() @ self.answer_rows.float().T
        if self.answer_bias is not None:
            logits = logits + self.answer_bias.float()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits[:, 0] - logits[:, 1]  # logit(yes) - logit(no)

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        margin = self.engine.score_pairs(queries, documents, self._encode)
        # P(yes) = sigmoid(margin), taken in float64 so that confident pairs do not all round to 1.0 and tie
        return 1.0 / (1.0 + np.exp(-margin)) if self.spec.score_kind == "probability" else margin

    def cache_fingerprint(self) -> dict[str, Any]:
        """The exact prompt (prefix, body template, suffix, answer tokens) and the resolved instruction text."""
        f = self.format
        return {"prefix": f.prefix, "body": self.template or f.body, "suffix": f.suffix, "yes": f.yes_token,
                "no": f.no_token, "instruction_text": self.instruction}

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update({"instruction_text": self.instruction, "prompt_format": self.format.name,
                    "template": self.template, "engine": self.engine.stats.as_dict()})
        return out
