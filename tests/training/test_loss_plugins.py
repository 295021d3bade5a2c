"""Every registered loss trains: a few optimiser steps on a tiny model lower its loss on a fixed batch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rrbench.components.registry import resolve  # noqa: E402
from rrbench.training.losses import check_group_size  # noqa: E402
from rrbench.util.errors import UsageError  # noqa: E402

Q1, Q2 = "aspirin prevents heart attacks", "caffeine affects sleep"
P1, P2 = "Daily aspirin lowered myocardial infarction rates by a quarter.", "Sleep quality decreased with late caffeine intake."
N1, N2 = "The weather was sunny on the day of the trial.", "Tea was not studied."
N3, N4 = "Participants were recruited from three hospitals.", "The cohort included students only."

BATCHES = {
    "pointwise": ([[Q1, Q1, Q2, Q2], [P1, N1, P2, N2]], torch.tensor([1.0, 0.0, 1.0, 0.0])),
    "listwise": ([[Q1, Q2], [[N1, P1, N3], [P2, N2, N4]]], [torch.tensor([0.0, 2.0, 0.0]), torch.tensor([1.0, 0.0, 0.0])]),
    "grouped": ([[Q1, Q2], [P1, P2], [N1, N2], [N3, N4]], None),
    "distill-pointwise": ([[Q1, Q1, Q2, Q2], [P1, N1, P2, N2]], torch.tensor([3.0, -2.0, 2.5, -1.5])),
    "distill-margin": ([[Q1, Q2], [P1, P2], [N1, N2]], torch.tensor([4.0, 3.0])),
}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from rrbench.testing.fixtures import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny", seed=3)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from rrbench.testing import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "qwen", seed=3)


def _loss_value(loss, inputs, labels) -> float:
    loss.model.eval()
    with torch.no_grad():
        return float(loss(inputs, labels))


def _fit(model_dir, loss_id: str, steps: int = 12, lr: float = 3e-3, **options) -> tuple[float, float]:
    """Loss on the fixed batch before and after ``steps`` Adam steps (evaluated without dropout)."""
    from rrbench.training.model import load_base

    torch.manual_seed(0)
    spec = resolve("losses", loss_id).spec
    model = load_base(model_dir, max_length=48)
    loss = spec.load()(model, **{**spec.options, **options})
    inputs, labels = BATCHES[spec.input_format]
    before = _loss_value(loss, inputs, labels)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        model.train()
        optimiser.zero_grad()
        loss(inputs, labels).backward()
        optimiser.step()
    return before, _loss_value(loss, inputs, labels)


@pytest.mark.parametrize("loss_id", ["bce", "ranknet", "listnet", "listmle", "plistmle", "lambdaloss", "mnrl",
                                     "cmnrl", "mse", "margin-mse"])
def test_cross_encoder_losses_lower_their_loss(tiny_bert, loss_id):
    before, after = _fit(tiny_bert, loss_id)
    assert after < before * 0.9, (loss_id, before, after)


@pytest.mark.parametrize("scheme", ["none", "ndcg1", "ndcg2", "lambdarank", "ndcg2pp"])
@pytest.mark.parametrize("k", [None, 2])
def test_every_lambdaloss_scheme_and_cutoff_trains(tiny_bert, scheme, k):
    before, after = _fit(tiny_bert, "lambdaloss", weighting_scheme=scheme, k=k)
    assert after < before, (scheme, k, before, after)


def test_mnrl_without_in_batch_negatives_trains(tiny_bert):
    before, after = _fit(tiny_bert, "mnrl", num_in_batch_negatives=0)
    assert after < before * 0.9


@pytest.mark.parametrize("loss_id", ["gen-pointwise", "gen-listwise"])
def test_generative_losses_lower_their_loss(tiny_lm, loss_id):
    before, after = _fit(tiny_lm, loss_id, steps=15, lr=1e-2)
    assert after < before * 0.9, (loss_id, before, after)


def test_generative_pointwise_is_yes_no_cross_entropy(tiny_lm):
    """The loss equals a softmax cross-entropy over the yes/no logits at the last position, computed by hand."""
    from rrbench.training.model import load_base

    model = load_base(tiny_lm, max_length=48)
    loss = resolve("losses", "gen-pointwise").spec.load()(model)
    (queries, docs), labels = BATCHES["pointwise"]
    model.eval()
    with torch.no_grad():
        features = model(model.preprocess(list(zip(queries, docs))))
        last = features["causal_logits"][:, -1]
        tok = model.tokenizer
        two = torch.stack([last[:, tok.convert_tokens_to_ids("no")], last[:, tok.convert_tokens_to_ids("yes")]], 1)
        expected = torch.nn.functional.cross_entropy(two, labels.long())
        got = loss([queries, docs], labels)
    assert torch.allclose(got, expected, atol=1e-5)


def test_generative_listwise_temperature_scales_the_softmax(tiny_lm):
    from rrbench.training.model import load_base

    model = load_base(tiny_lm, max_length=48)
    model.eval()
    make = resolve("losses", "gen-listwise").spec.load()
    inputs, _ = BATCHES["grouped"]
    with torch.no_grad():
        scores = torch.stack([model.predict(list(zip(inputs[0], col)), activation_fn=torch.nn.Identity(),
                                            convert_to_tensor=True) for col in inputs[1:]], 1)
        for temperature in (1.0, 0.25):
            expected = torch.nn.functional.cross_entropy(scores / temperature, torch.zeros(2, dtype=torch.long))
            got = make(model, temperature=temperature)(inputs, None)
            assert torch.allclose(got, expected, atol=1e-4)


def test_generative_loss_rejects_a_classifier_and_mismatched_tokens(tiny_bert, tiny_lm):
    from rrbench.training.model import load_base

    with pytest.raises(UsageError, match="causal-LM"):
        resolve("losses", "gen-pointwise").spec.load()(load_base(tiny_bert, 32))
    with pytest.raises(UsageError, match="yes/no head"):
        resolve("losses", "gen-listwise").spec.load()(load_base(tiny_lm, 32), positive_token="true")
    custom = load_base(tiny_lm, 32, positive_token="true", negative_token="false")
    resolve("losses", "gen-pointwise").spec.load()(custom, positive_token="true", negative_token="false")


def test_group_below_minimum_and_unknown_scheme_are_usage_errors():
    with pytest.raises(UsageError, match="at least 3 sentences"):
        check_group_size("gen-listwise", {"min_group_size": 3}, 2)
    check_group_size("listnet", {"min_group_size": 2}, 2)
    from rrbench.training.losses import lambda_scheme

    with pytest.raises(UsageError, match="Did you mean: ndcg2"):
        lambda_scheme("ndgc2")


def test_unknown_loss_suggests_a_close_match():
    from rrbench.util.errors import UnknownComponentError

    with pytest.raises(UnknownComponentError, match="Did you mean: lambdaloss"):
        resolve("losses", "lambaloss")


def test_every_loss_declares_a_known_input_format():
    from rrbench.components.registry import get_registry
    from rrbench.training.losses import INPUT_FORMATS

    entries = get_registry().list("losses")
    assert {e.id for e in entries} >= {"bce", "ranknet", "listnet", "listmle", "plistmle", "lambdaloss", "mnrl",
                                       "cmnrl", "mse", "margin-mse", "gen-pointwise", "gen-listwise"}
    for entry in entries:
        assert entry.spec.input_format in INPUT_FORMATS, entry.id
        assert callable(entry.spec.load())
