"""Specs of training losses, negative miners and regimes (cheap: no torch import here).

Every loss declares the *input format* it consumes, because that decides how training data is built (see
:mod:`rrbench.training.data`): ``pointwise`` rows ``(query, sentence, label)``, ``listwise`` groups
``(query, [sentences], [grades])``, ``grouped`` rows ``(query, positive, negative_1..n)`` for softmax-over-a-group
losses, and the two distillation formats that carry a teacher's scores. A regime is a named recipe: its options
expand to loss, miner and hyper-parameters, and explicit ``rrbench train`` flags override them.
"""

from __future__ import annotations

from typing import Any

from rrbench.components.specs import LossSpec, MinerSpec, OptionSpec, RegimeSpec

_L = "rrbench.training.losses:"
_M = "rrbench.training.miners:"
_R = "rrbench.training.regimes:expand"

#: Listwise losses of sentence-transformers that share the same ``(query, [docs], [grades])`` input.
LISTWISE_LOSSES = ("listnet", "listmle", "plistmle", "lambdaloss")
LAMBDA_SCHEMES = ("none", "ndcg1", "ndcg2", "lambdarank", "ndcg2pp")

# Declared options (type, default, range). ``searchable=False`` marks what is plumbing, not a hyper-parameter.
_MIN_GROUP = OptionSpec("min_group_size", "int", 2, low=2, high=1024, searchable=False,
                        help="smallest per-query group the loss accepts")
_SIGMA = OptionSpec("sigma", "float", 1.0, low=0.1, high=10.0, log=True, help="slope of the pairwise logistic")
_CUTOFF = OptionSpec("k", "int", None, low=1, high=100, help="only pairs involving the top-k count (none: all)")
_SCALE = OptionSpec("scale", "float", 10.0, low=1.0, high=100.0, log=True, help="inverse softmax temperature")
_IN_BATCH = OptionSpec("num_in_batch_negatives", "int", 4, low=0, high=64,
                       help="other queries' candidates used as extra negatives")
_POS_TOKEN = OptionSpec("positive_token", "str", "yes", searchable=False, help="token whose logit means relevant")
_NEG_TOKEN = OptionSpec("negative_token", "str", "no", searchable=False, help="token whose logit means irrelevant")


def register_losses(register: Any) -> None:
    """Register one LossSpec per wrapped loss; ``options`` are the defaults ``--loss-option`` can override."""
    register(LossSpec(id="bce", aliases=("BinaryCrossEntropyLoss",), loader=_L + "make_bce", input_format="pointwise",
                      description="binary cross-entropy on (query, sentence, 0/1) rows (sentence-transformers)",
                      option_schema=(OptionSpec("pos_weight", "float", None, low=0.1, high=100.0, log=True, help="weight of positive rows (none: 1)"),)))
    register(LossSpec(id="ranknet", aliases=("RankNetLoss",), loader=_L + "make_ranknet", input_format="listwise",
                      description="pairwise logistic loss over every ordered pair of a query's group",
                      option_schema=(_CUTOFF, _SIGMA, _MIN_GROUP)))
    register(LossSpec(id="listnet", aliases=("ListNetLoss",), loader=_L + "make_listnet", input_format="listwise",
                      description="listwise: cross-entropy between score and grade softmax distributions",
                      option_schema=(_MIN_GROUP,)))
    register(LossSpec(id="listmle", aliases=("ListMLELoss",), loader=_L + "make_listmle", input_format="listwise",
                      description="listwise: likelihood of the grade-sorted permutation (Plackett-Luce)",
                      option_schema=(_MIN_GROUP,)))
    register(LossSpec(id="plistmle", aliases=("PListMLELoss",), loader=_L + "make_plistmle",
                      input_format="listwise",
                      description="position-aware ListMLE (top positions weigh more)",
                      option_schema=(_MIN_GROUP,)))
    register(LossSpec(id="lambdaloss", aliases=("LambdaLoss",), loader=_L + "make_lambdaloss",
                      input_format="listwise",
                      description="LambdaLoss framework; weighting_scheme in none|ndcg1|ndcg2|lambdarank|ndcg2pp, "
                                  "optional cutoff k",
                      option_schema=(
                          OptionSpec("weighting_scheme", "str", "ndcg2pp", choices=LAMBDA_SCHEMES,
                                     help="how pair swaps are weighted (LambdaLoss framework)"),
                          _CUTOFF, _SIGMA,
                          OptionSpec("mu", "float", 10.0, low=0.1, high=100.0, log=True,
                                     help="ndcg2pp: weight of the ndcg2 term"),
                          _MIN_GROUP)))
    register(LossSpec(id="mnrl", aliases=("MultipleNegativesRankingLoss",), loader=_L + "make_mnrl",
                      input_format="grouped",
                      description="softmax over positive + mined negatives + in-batch negatives",
                      option_schema=(_SCALE, _IN_BATCH, _MIN_GROUP)))
    register(LossSpec(id="cmnrl", aliases=("CachedMultipleNegativesRankingLoss",), loader=_L + "make_cmnrl",
                      input_format="grouped",
                      description="MNRL with gradient caching: large effective batches in bounded memory",
                      option_schema=(_SCALE, _IN_BATCH,
                                     OptionSpec("mini_batch_size", "int", 16, low=1, high=4096, searchable=False,
                                                help="gradient-cache chunk (memory, not results)"),
                                     _MIN_GROUP)))
    register(LossSpec(id="mse", aliases=("MSELoss",), loader=_L + "make_mse", input_format="distill-pointwise",
                      description="distillation: match a teacher's cached score per (query, sentence)"))
    register(LossSpec(id="margin-mse", aliases=("MarginMSELoss", "marginmse"), loader=_L + "make_margin_mse",
                      input_format="distill-margin",
                      description="distillation: match the teacher's positive-minus-negative score margins"))
    register(LossSpec(id="gen-pointwise", aliases=("generative-pointwise",), loader=_L + "make_gen_pointwise",
                      input_format="pointwise",
                      description="causal-LM reranker: yes/no cross-entropy on the last position's token logits",
                      option_schema=(_POS_TOKEN, _NEG_TOKEN)))
    register(LossSpec(id="gen-listwise", aliases=("generative-listwise",), loader=_L + "make_gen_listwise",
                      input_format="grouped",
                      description="causal-LM reranker: softmax over one positive + negatives' yes-no log-odds",
                      option_schema=(_POS_TOKEN, _NEG_TOKEN,
                                     OptionSpec("temperature", "float", 1.0, low=0.05, high=20.0, log=True,
                                                help="softmax temperature over the group"),
                                     _MIN_GROUP)))


_MINER_RETRIEVER = OptionSpec("retriever", "str", "bm25", searchable=False, help="retriever id ranking the negatives")
_MINER_CHECKPOINT = OptionSpec("checkpoint", "str", None, searchable=False, help="reranker checkpoint directory")
_MINER_BATCH = OptionSpec("batch_size", "int", 64, low=1, high=4096, searchable=False, help="scoring batch size")


def register_miners(register: Any) -> None:
    """Register the four negative pools of the research plan (N0-N3); all deterministic given a seed."""
    register(MinerSpec(id="n0-random", aliases=("N0", "random"), loader=_M + "RandomMiner",
                       description="N0: uniform random non-evidence sentences of the same post"))
    register(MinerSpec(id="n1-retriever-hard", aliases=("N1", "retriever-hard"), loader=_M + "RetrieverHardMiner",
                       description="N1: top-ranked non-evidence sentences of a retriever (default bm25)",
                       option_schema=(_MINER_RETRIEVER,)))
    register(MinerSpec(id="n2-iterative-hard", aliases=("N2", "iterative-hard"), loader=_M + "RerankerHardMiner",
                       description="N2: top-scoring false positives of a reranker checkpoint (option checkpoint)",
                       option_schema=(_MINER_CHECKPOINT, _MINER_BATCH)))
    register(MinerSpec(id="n3-mixed", aliases=("N3", "mixed"), loader=_M + "MixedMiner",
                       description="N3: hard (N1, or N2 when a checkpoint is given) and random negatives mixed",
                       option_schema=(OptionSpec("hard_fraction", "float", 0.5, low=0.0, high=1.0,
                                                  help="share of hard negatives; the rest are random"),
                                       _MINER_RETRIEVER, _MINER_CHECKPOINT)))


def _regime(register: Any, id: str, description: str, aliases: tuple[str, ...] = (), **options: Any) -> None:
    register(RegimeSpec(id=id, aliases=aliases, loader=_R, description=description, options=options))


def register_regimes(register: Any) -> None:
    """Register R0-R5 of the research plan, plus the documented MiniLM recipe."""
    _regime(register, "r0", "R0: off the shelf, no training (the base model is evaluated and calibrated only)",
            aliases=("R0",), train=False, loss="bce", miner="n0-random")
    _regime(register, "r1", "R1: binary cross-entropy with N3 mixed negatives", aliases=("R1",),
            loss="bce", miner="n3-mixed")
    _regime(register, "r2", "R2: RankNet over per-query groups, N3 mixed negatives", aliases=("R2",),
            loss="ranknet", miner="n3-mixed")
    for loss in LISTWISE_LOSSES:
        _regime(register, f"r3-{loss}", f"R3: listwise {loss} over per-query groups, N3 mixed negatives",
                loss=loss, miner="n3-mixed")
    for scheme in LAMBDA_SCHEMES:
        _regime(register, f"r3-lambdaloss-{scheme}", f"R3: LambdaLoss with the {scheme} weighting scheme",
                loss="lambdaloss", miner="n3-mixed", loss_options={"weighting_scheme": scheme})
    for loss in ("lambdaloss", "plistmle", "ranknet"):
        _regime(register, f"r4-{loss}", f"R4: curriculum, BCE warm-up for 0.3 epoch then {loss}",
                loss=loss, miner="n3-mixed", curriculum={"warmup_loss": "bce", "warmup_fraction": 0.3})
    _regime(register, "r5-mse", "R5: distil a teacher's cached scores into the student with MSE",
            aliases=("R5",), loss="mse", miner="n3-mixed", requires_teacher=True)
    _regime(register, "r5-margin-mse", "R5: distil a teacher's cached score margins with MarginMSE",
            loss="margin-mse", miner="n3-mixed", requires_teacher=True)
    _regime(register, "minilm-scifact",
            "recipe: all-MiniLM-L6-v2 fine-tuned as a cross-encoder on scifact-evidence train (R1, mean-pooled head, "
            "1 epoch, CPU)",
            aliases=("minilm-cross-encoder",), task="scifact-evidence", base="minilm-l6", loss="bce", head="mean",
            miner="n3-mixed", epochs=1.0, lr=5e-5, warmup=0.1, batch_size=16, max_length=96, negatives=4,
            include_no_evidence=False, eval_steps=60, patience=3, seed=13)
