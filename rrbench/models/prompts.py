"""Prompt templates of the generative (LLM) rerankers, as plain strings (no torch here).

Why strings and not a chat-template call: the scores of a yes/no reranker depend on every character of the prompt
(system text, role markers, the empty ``<think>`` block of Qwen3), so rrbench builds the exact string the model card
prescribes and golden tests pin it. A prompt has three parts: a fixed *prefix*, a *body* that holds the instruction,
query and document (the only part truncated to ``max_length``), and a fixed *suffix* after which the model predicts the
answer token.

Instructions are named variants per model family (``--instruction NAME``) or free text (``--instruction "..."``);
a custom body template (option ``template``) must keep the ``{query}`` and ``{document}`` placeholders.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from rrbench.util.errors import UsageError


@dataclass(frozen=True)
class PromptFormat:
    """The exact text around (instruction, query, document) and the two answer tokens compared at the last position."""

    name: str
    prefix: str
    body: str  # placeholders {instruction} (optional), {query}, {document}
    suffix: str
    yes_token: str
    no_token: str
    #: body used when the instruction is empty (mxbai-v2 drops its instruction line entirely)
    body_without_instruction: str | None = None
    instructions: dict[str, str] = field(default_factory=dict)
    default_instruction: str | None = None

    def render_body(self, query: str, document: str, instruction: str | None, template: str | None = None) -> str:
        body = template or (self.body if instruction or self.body_without_instruction is None
                            else self.body_without_instruction)
        return body.format(instruction=instruction or "", query=query, document=document)

    def render(self, query: str, document: str, instruction: str | None, template: str | None = None) -> str:
        """The full prompt string the model sees (before truncation)."""
        return self.prefix + self.render_body(query, document, instruction, template) + self.suffix


# Qwen3-Reranker model card: a system turn fixing the answer to "yes"/"no", a user turn with Instruct/Query/Document,
# and an assistant turn that starts with an empty thinking block; the score is P("yes") against P("no").
QWEN3 = PromptFormat(
    name="qwen3-reranker",
    prefix=('<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the '
            'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'),
    body="<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
    suffix="<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    yes_token="yes",
    no_token="no",
    instructions={
        "web-search": "Given a web search query, retrieve relevant passages that answer the query",
        "evidence": "Given a claim, judge whether the sentence from the same document is evidence that supports "
                    "or refutes the claim",
        "criterion": "Given a criterion, judge whether the sentence from the post provides evidence that the "
                     "criterion is met",
        "fact-check": "Given a scientific claim, retrieve the sentence that verifies or contradicts it",
    },
    default_instruction="web-search",
)

# mxbai-rerank-v2 (mixedbread-ai/mxbai-rerank, MxbaiRerankV2): Qwen2 chat prefix, "query: ..." + sep + "document: ...",
# a fixed task prompt ending in "Relevance:", and the score is logit("1") - logit("0") at the last position.
MXBAI_V2_TASK = ("You are a search relevance expert who evaluates how well documents match search queries. For each "
                 "query-document pair, carefully analyze the semantic relationship between them, then provide your "
                 "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:")
MXBAI_V2 = PromptFormat(
    name="mxbai-rerank-v2",
    prefix="<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
           "<|im_start|>user\n",
    body="instruction: {instruction}\nquery: {query}\ndocument: {document}",
    body_without_instruction="query: {query}\ndocument: {document}",
    suffix="\n" + MXBAI_V2_TASK + "<|im_end|>\n<|im_start|>assistant\n",
    yes_token="1",
    no_token="0",
    instructions={
        "none": "",
        "evidence": "Find the sentence that is evidence for or against the claim",
        "criterion": "Find the sentence of the post that shows the criterion is met",
    },
    default_instruction="none",
)

FORMATS: dict[str, PromptFormat] = {QWEN3.name: QWEN3, MXBAI_V2.name: MXBAI_V2}

#: Instruction variants of the instruction-aware pointwise families that prepend the instruction to the query
#: (bge-reranker-v2-m3 has none; MTEB appends instructions to the query for such models).
QUERY_PREFIX_INSTRUCTIONS: dict[str, str] = {
    "none": "",
    "evidence": "Find evidence for this claim: ",
    "criterion": "Find a sentence showing this criterion is met: ",
}


def resolve_instruction(value: str | None, variants: dict[str, str], default: str | None, model: str) -> str | None:
    """A named variant, free text, or the model's default; the resolved *text* goes into the config hash."""
    if value is None:
        value = default
    if value is None:
        return None
    if value in variants:
        return variants[value]
    if value.startswith("@"):
        raise UsageError(f"reranker {model}: unknown instruction variant {value[1:]!r}; "
                         f"choose from {', '.join(sorted(variants)) or '(none)'} or pass free text")
    return value


def check_template(template: str, model: str) -> str:
    """A user body template must contain {query} and {document} and no other placeholder than {instruction}."""
    try:
        names = {f[1] for f in string.Formatter().parse(template) if f[1] is not None}
    except ValueError as exc:
        raise UsageError(f"reranker {model}: option template is not a valid format string: {exc}") from None
    missing = [p for p in ("query", "document") if p not in names]
    if missing:
        raise UsageError(f"reranker {model}: option template must contain the placeholder(s) "
                         f"{', '.join('{' + m + '}' for m in missing)}; got {template!r}")
    unknown = names - {"query", "document", "instruction"}
    if unknown:
        raise UsageError(f"reranker {model}: option template has unknown placeholder(s) "
                         f"{', '.join(sorted('{' + u + '}' for u in unknown))}; use {{instruction}}, {{query}}, "
                         f"{{document}}")
    return template
