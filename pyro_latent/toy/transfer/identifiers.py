r"""Learned concept identifiers: the post's "decision tree or neural net", against the exact answer.

The post's recipe for transferring a concept ``c`` from a source model to a destination model:
generate observation windows ``o`` from the source model together with its latent ``l_s``; infer
the destination model's latent ``l_d = g_d(o)``; label it with ``c(l_s)``; fit a classifier
``f̂ : l_d ↦ c``.  The population target of that regression is exactly

.. math::

    f_d(l_d) = \mathbb{E}[c(l_s) \mid l_d] \quad\text{under}\quad
    p(l_s, l_d) = \sum_o p_s(l_s, o)\, p_d(l_d \mid o),

the transferred identifier of :func:`pyro_latent.toy.transfer.exact.transfer_concept`, so a learned
identifier can be scored **on every valid destination latent** against the exact one:

* ``accuracy``: the fraction of the ``S`` valid states where ``argmax f̂ = argmax f_d`` (the
  invertible case, where ``f_d`` is one-hot);
* ``log_loss_gap``: ``(1/S) Σ_{l_d} KL(f_d(l_d) ‖ f̂(l_d))``, the excess log loss over the Bayes
  predictor, probabilities clipped at ``1e-6`` (the non-invertible case, where ``f_d`` is soft).

``g_d`` is the destination's MAP latent as in the post (``model.map``: Viterbi over the compiled
tables with the default ``engine="hmm"``, ``infer_discrete`` at temperature 0 with
``engine="enum"``), or one posterior draw (``model.sample_posterior``: forward-filtering
backward-sampling, or ``infer_discrete`` at temperature 1): with a single frame MAP breaks
ties to one representative per frame, while a posterior draw keeps the joint ``p(l_s, l_d)``
whose regression function is ``f_d`` on every state.  Latents are fed to the learners one-hot
(``latent_features``): model 1 as ``(blue, red, velocity)`` indicators, model 2 as six indicators
per cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted, check_X_y, validate_data
from tqdm.auto import tqdm

from pyro_latent.core.checks import check_positive_int, check_positive_ints
from pyro_latent.toy.concepts import get_concept, latent_space
from pyro_latent.toy.transfer.exact import transfer_concept, translation_matrix
from pyro_latent.toy.world import NUM_LOCAL_CODES

__all__ = [
    "LEARNERS",
    "TorchMLPClassifier",
    "TransferData",
    "evaluate_identifier",
    "fit_from_counts",
    "latent_features",
    "learning_curve",
    "make_learner",
    "samples_to_accuracy",
    "samples_to_accuracy_by_seed",
    "transfer_data",
]

LEARNERS = ("tree", "mlp", "logistic")
PROBABILITY_FLOOR = 1e-6


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """A one-hidden-layer ReLU network trained full-batch with Adam on the cross-entropy.

    Args:
        hidden_units: width of the hidden layer.
        max_epochs: upper bound on full-batch Adam steps.
        learning_rate: Adam's step size.
        weight_decay: L2 penalty (Adam's ``weight_decay``).
        tol: stop once the training loss falls below ``tol`` (checked every 25 epochs).
        seed: seed for the initial weights.
    """

    def __init__(
        self,
        hidden_units: int = 32,
        max_epochs: int = 300,
        learning_rate: float = 0.03,
        weight_decay: float = 0.0,
        tol: float = 1e-3,
        seed: int = 0,
    ):
        self.hidden_units = hidden_units
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.tol = tol
        self.seed = seed

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X [N, F]``, ``y [N]``; ``sample_weight`` weights the mean cross-entropy (a
        weight of ``m`` is the same as ``m`` copies of the row)."""
        X, y = check_X_y(X, y)
        self.n_features_in_ = X.shape[1]
        self.classes_, target = np.unique(y, return_inverse=True)
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        weight = torch.as_tensor(weight / weight.sum(), dtype=torch.float32)
        generator = torch.Generator().manual_seed(int(self.seed))
        self.net_ = _mlp(X.shape[1], self.hidden_units, len(self.classes_), generator)
        inputs = torch.as_tensor(X, dtype=torch.float32)
        labels = torch.as_tensor(target, dtype=torch.long)
        optimiser = torch.optim.Adam(
            self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        self.n_iter_ = 0
        for epoch in range(self.max_epochs):
            optimiser.zero_grad()
            losses = torch.nn.functional.cross_entropy(self.net_(inputs), labels, reduction="none")
            loss = (weight * losses).sum()
            loss.backward()
            optimiser.step()
            self.n_iter_ = epoch + 1
            if epoch % 25 == 24 and loss.item() < self.tol:
                break
        self.loss_ = loss.item()
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "net_")
        X = validate_data(self, X, reset=False)
        with torch.no_grad():
            logits = self.net_(torch.as_tensor(X, dtype=torch.float32))
        return torch.softmax(logits, -1).double().numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(-1)]


def _mlp(inputs: int, hidden: int, outputs: int, generator: torch.Generator) -> torch.nn.Module:
    net = torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, outputs)
    )
    with torch.no_grad():
        for layer in (net[0], net[2]):
            bound = 1 / math.sqrt(layer.in_features)
            layer.weight.copy_(
                torch.empty_like(layer.weight).uniform_(-bound, bound, generator=generator)
            )
            layer.bias.zero_()
    return net


def make_learner(name: str, seed: int = 0):
    """A fresh, unfitted learner: ``"tree"``, ``"mlp"`` or ``"logistic"``."""
    if name == "tree":
        return DecisionTreeClassifier(random_state=seed)
    if name == "mlp":
        return TorchMLPClassifier(seed=seed)
    if name == "logistic":
        return LogisticRegression(C=100.0, max_iter=2000)
    raise ValueError(f"unknown learner {name!r}; available: {', '.join(LEARNERS)}")


def latent_features(model, latents) -> np.ndarray:
    """One-hot features ``[N, F]`` of a model's latents (``[N, 3]`` or ``[N, n]``)."""
    latents = torch.as_tensor(latents).long()
    n = model.world.n_cells
    if latent_space(model) == "objects":
        b, r, v = latents.unbind(-1)
        parts = [
            torch.nn.functional.one_hot(b, n),
            torch.nn.functional.one_hot(r, n),
            torch.nn.functional.one_hot(v, 2),
        ]
        return torch.cat(parts, -1).float().numpy()
    return torch.nn.functional.one_hot(latents, NUM_LOCAL_CODES).flatten(-2).float().numpy()


# =============================================================================== data
@dataclass
class TransferData:
    """Training pairs for one source/destination pair: the destination latents and, for each
    concept, the source concept's value on the same sequence."""

    dst_latents: torch.Tensor  # [N, d]
    labels: dict[str, np.ndarray]  # concept name -> [N]

    def __len__(self) -> int:
        return self.dst_latents.shape[0]


def _decode_last(dst_model, obs: torch.Tensor, decode: str) -> torch.Tensor:
    """The destination latent at the last step for each window, decoding each distinct window
    once (the MAP is a function of ``o``; posterior draws are independent per occurrence)."""
    unique, inverse = torch.unique(obs, dim=0, return_inverse=True)
    if decode == "map":
        return dst_model.map(unique)[:, -1][inverse]
    counts = torch.bincount(inverse)
    draws = dst_model.sample_posterior(unique, int(counts.max()))[:, :, -1]  # [K, U, d]
    order = torch.argsort(inverse, stable=True)
    rank = torch.empty_like(inverse)
    starts = torch.cumsum(counts, 0) - counts
    rank[order] = torch.arange(len(inverse)) - starts[inverse[order]]
    return draws[rank, inverse]


def transfer_data(
    src_model,
    dst_model,
    window: int,
    n_samples: int,
    concept_names,
    *,
    seed: int = 0,
    decode: str = "map",
) -> TransferData:
    """Sample ``(o, l_s)`` from the source program, decode ``l_d`` with the destination program
    (``decode="map"`` or ``"sample"``), and label with every concept in ``concept_names``."""
    T = check_positive_int(window, "window")
    n_samples = check_positive_int(n_samples, "n_samples")
    if decode not in ("map", "sample"):
        raise ValueError(f"decode must be 'map' or 'sample', got {decode!r}")
    pyro.set_rng_seed(seed)
    src_latents, obs = src_model.sample(T, n_samples)
    dst_latents = _decode_last(dst_model, obs, decode)
    world = src_model.world
    labels = {
        name: get_concept(name, world)(src_model, src_latents[:, -1]).numpy()
        for name in concept_names
    }
    return TransferData(dst_latents, labels)


# =============================================================================== scoring
def _full_proba(learner, features: np.ndarray, n_values: int) -> np.ndarray:
    """``predict_proba`` spread over all ``n_values`` classes (unseen ones get zero)."""
    proba = np.zeros((features.shape[0], n_values))
    proba[:, np.asarray(learner.classes_, dtype=int)] = learner.predict_proba(features)
    return proba


def evaluate_identifier(learner, dst_model, exact: torch.Tensor) -> dict[str, float]:
    """Score a fitted identifier on every valid destination latent against ``exact [S, K]``."""
    features = latent_features(dst_model, dst_model.valid_latents)
    proba = _full_proba(learner, features, exact.shape[1])
    target = exact.numpy()
    accuracy = float((proba.argmax(-1) == target.argmax(-1)).mean())
    q = np.clip(proba, PROBABILITY_FLOOR, 1.0)
    q = q / q.sum(-1, keepdims=True)
    p = target
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum(-1)
    return {"accuracy": accuracy, "log_loss_gap": float(kl.mean())}


def fit_from_counts(learner, features: np.ndarray, counts: np.ndarray):
    """Fit on a training set given as ``counts [S, K]`` of (state, label) pairs, with
    ``features [S, F]`` of the states, each distinct row weighted by its count.

    For these learners this is the same fit as on the raw rows (the losses are sums over rows
    and a tree cannot split identical rows) and far cheaper: the latent space has only ``S``
    states.  A constant label gives a constant predictor.
    """
    state, label = np.nonzero(counts)
    if len(np.unique(label)) == 1:
        return _Constant(label[0])
    return learner.fit(features[state], label, sample_weight=counts[state, label])


class _Constant:
    def __init__(self, value):
        self.classes_ = np.array([value])

    def predict_proba(self, X):
        return np.ones((X.shape[0], 1))


def learning_curve(
    src_model,
    dst_model,
    window: int,
    concept_names,
    sizes,
    seeds,
    *,
    learners=LEARNERS,
    decode: str = "map",
    progress: bool = False,
    label: str = "",
) -> list[dict]:
    """Fit every learner on the first ``size`` pairs of each seed's data, for every concept, and
    score it against the exact transferred identifier.  Returns one record per fit."""
    sizes = check_positive_ints(sizes, "sizes")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must be a non-empty list of ints")
    matrix = translation_matrix(src_model, dst_model, window)
    exact = {
        name: transfer_concept(name, src_model, dst_model, window, matrix=matrix)
        for name in concept_names
    }
    features = latent_features(dst_model, dst_model.valid_latents)  # [S, F]
    S = features.shape[0]
    records = []
    total = len(seeds) * len(concept_names) * len(sizes) * len(learners)
    bar = tqdm(total=total, desc=f"identifiers {label}", disable=not progress)
    for seed in seeds:
        data = transfer_data(
            src_model, dst_model, window, sizes[-1], concept_names, seed=seed, decode=decode
        )
        index = dst_model.latent_index(data.dst_latents).numpy()
        for name in concept_names:
            K = exact[name].shape[1]
            for size in sizes:
                pairs = index[:size] * K + data.labels[name][:size]
                counts = np.bincount(pairs, minlength=S * K).reshape(S, K)
                for learner_name in learners:
                    learner = fit_from_counts(make_learner(learner_name, seed), features, counts)
                    score = evaluate_identifier(learner, dst_model, exact[name])
                    records.append(
                        {
                            "concept": name,
                            "learner": learner_name,
                            "size": size,
                            "seed": seed,
                            **score,
                        }
                    )
                    bar.update()
    bar.close()
    return records


SAMPLE_RULES = ("mean", "every")


def samples_to_accuracy(records: list[dict], threshold: float = 0.99, rule: str = "mean") -> dict:
    """``{(concept, learner): smallest size that reaches ``threshold``}`` (``None`` if none does).

    ``rule="mean"``: the mean accuracy over seeds reaches it (a seed may still be below);
    ``rule="every"``: every seed's accuracy reaches it at that size.
    """
    if rule not in SAMPLE_RULES:
        raise ValueError(f"rule must be one of {SAMPLE_RULES}, got {rule!r}")
    combine = np.mean if rule == "mean" else np.min
    out = {}
    for key, by_size in _accuracy_table(records).items():
        reached = [s for s in sorted(by_size) if combine(by_size[s]) >= threshold]
        out[key] = reached[0] if reached else None
    return out


def samples_to_accuracy_by_seed(records: list[dict], threshold: float = 0.99) -> dict:
    """``{(concept, learner): [first size at which each seed reaches threshold or None]}``, in
    seed order: the spread across seeds of the samples needed."""
    by_seed: dict[tuple, dict[int, list[tuple[int, float]]]] = {}
    for r in records:
        key = (r["concept"], r["learner"])
        by_seed.setdefault(key, {}).setdefault(r["seed"], []).append((r["size"], r["accuracy"]))
    out = {}
    for key, seeds in by_seed.items():
        firsts = []
        for seed in sorted(seeds):
            reached = [s for s, a in sorted(seeds[seed]) if a >= threshold]
            firsts.append(reached[0] if reached else None)
        out[key] = firsts
    return out


def _accuracy_table(records: list[dict]) -> dict[tuple, dict[int, list[float]]]:
    table: dict[tuple, dict[int, list[float]]] = {}
    for r in records:
        table.setdefault((r["concept"], r["learner"]), {}).setdefault(r["size"], []).append(
            r["accuracy"]
        )
    return table
