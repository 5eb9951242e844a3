r"""Disentanglement metrics: how well single code dimensions line up with known factors.

Codes ``z [N, D]`` and ground-truth factors ``v [N, K]`` of the same ``N`` items (row ``n`` of
each for item ``n``).  A *disentangled* code gives each factor its own dimension: the metrics
below ask, in three ways, whether factor ``v_k`` is captured by one dimension ``z_i`` and no
other.  All three are written from the papers; each is near 1 for an axis-aligned code (whatever
the scale, sign, shift or order of its dimensions; SAP of a discrete factor less, see below) and
near 0 for codes that ignore the factors.  Unlike the rest of :mod:`pyro_latent.analysis` they
are *not* coordinate-free: a rotation of an axis-aligned code lowers all three, which is the
point of them.

**MIG** (the mutual information gap; Chen, Li, Grosse and Duvenaud, "Isolating Sources of
Disentanglement in Variational Autoencoders", NeurIPS 2018).  With ``I(z_i; v_k)`` the mutual
information between a code dimension and a factor, ``H(v_k)`` the factor's entropy and, for
each factor, ``j(k)`` the dimension of highest and ``j'`` the one of second highest MI,

.. math::

    \mathrm{MIG} = \frac{1}{K} \sum_{k=1}^{K}
        \frac{I(z_{j(k)}; v_k) - I(z_{j'}; v_k)}{H(v_k)} \in [0, 1].

Dividing by ``H(v_k) ≥ I(z_i; v_k)`` puts every factor on the same scale; the gap, rather than
the largest MI alone, penalises a factor spread over several dimensions.  It is estimated as
``disentanglement_lib`` does (Locatello et al. 2019): each code dimension is cut into ``bins``
equal-width histogram bins over its own range (so a positive or negative rescaling and a shift
of a dimension leave its bins, and MIG, unchanged; a general monotone map does not), the
factors are read as discrete (their distinct values are the classes: discretise a continuous
factor first), and ``I`` and ``H`` are the plug-in estimates from the counts, in nats
(:func:`sklearn.metrics.mutual_info_score`).  With ``D = 1`` the second MI is 0.  A factor
that takes a single value has ``H = 0`` and no MIG term: it is refused.  The plug-in MI of
independent variables is biased upwards by about ``(bins − 1)(L − 1) / 2N`` nats (``L`` levels),
so pure noise scores a little above 0.

**DCI** (disentanglement, completeness, informativeness; Eastwood and Williams, "A Framework
for the Quantitative Evaluation of Disentangled Representations", ICLR 2018).  For each factor
a regressor predicts ``v_k`` from the whole code, and the non-negative importance matrix
``R [D, K]`` holds how much dimension ``i`` mattered to factor ``j``.  With the row
distribution ``P_ij = R_ij / Σ_k R_ik`` and ``H_K`` the entropy to log base ``K``,

.. math::

    D_i = 1 - H_K(P_{i\cdot}), \qquad \rho_i = \frac{\sum_j R_{ij}}{\sum_{ij} R_{ij}},
    \qquad \text{disentanglement} = \sum_i \rho_i D_i:

a dimension that matters to one factor only has ``D_i = 1``, one that matters equally to all
has 0, and the weights ``ρ_i`` keep nearly unused dimensions from counting.  With the column
distribution ``P̃_ij = R_ij / Σ_i R_ij`` and ``H_D`` to log base ``D``,

.. math::

    C_j = 1 - H_D(\tilde P_{\cdot j}), \qquad
    \text{completeness} = \frac{1}{K} \sum_j C_j:

a factor captured by a single dimension has ``C_j = 1``.  Informativeness is the regressor's
score on held-out items: R² for a continuous factor (it can fall below 0 for a code that knows
nothing about the factor), accuracy for a discrete one (chance is then the frequency of the
commonest class, not 0).  Conventions for the edge cases: a row of ``R`` that is all zero (an
unused dimension) gets ``ρ_i = 0`` and ``D_i = 0``; a column that is all zero (a factor no
dimension was used for) gets ``C_j = 0``; an entropy to base 1 (``K = 1`` or ``D = 1``) is 0.
:func:`dci_from_importance` is this closed-form step alone; :func:`dci` fits the regressors.

**SAP** (the separated attribute predictability; Kumar, Sattigeri and Balakrishnan,
"Variational Inference of Disentangled Latent Concepts from Unlabeled Observations", ICLR
2018).  A score matrix ``S [D, K]`` holds how well dimension ``i`` *alone* predicts factor
``k``: for a continuous factor the R² of the linear regression of ``v_k`` on ``z_i``, which is
the squared Pearson correlation ``corr(z_i, v_k)²`` (on the training items), and for a discrete
factor the held-out accuracy of a classifier on the single feature ``z_i``.  Then

.. math::

    \mathrm{SAP} = \frac{1}{K} \sum_k \bigl( S_{(1)k} - S_{(2)k} \bigr),

the gap between the largest and second largest score of each factor's column (with ``D = 1``
the second is 0).  A code dimension with zero variance scores 0.  For a discrete factor the
second best dimension usually scores about chance, so even a perfect code's SAP stays below 1
by about the chance accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pyro_latent.analysis.similarity import _as_matrix
from pyro_latent.core.checks import check_int, check_nonnegative_int

__all__ = [
    "dci",
    "dci_from_importance",
    "mutual_information_gap",
    "sap_score",
]

# The tree ensemble of :func:`dci`, one per factor (its docstring says why these).
_DCI_TREES = 25
_DCI_ROW_FRACTION = 0.5
_DCI_MIN_LEAF = 10


# ------------------------------------------------------------------------------- validation
def _paired(codes, factors, codes_name: str, factors_name: str, minimum: int = 2):
    """Codes ``[N, D]`` and factors ``[N, K]`` of the same ``N ≥ minimum`` items, as float64."""
    Z = _as_matrix(codes, codes_name)
    V = _as_matrix(factors, factors_name)
    if Z.shape[0] != V.shape[0]:
        raise ValueError(
            f"{codes_name} and {factors_name} must hold the same items (rows), got "
            f"{Z.shape[0]} and {V.shape[0]} rows"
        )
    if Z.shape[0] < minimum:
        raise ValueError(f"{codes_name} needs at least {minimum} items (rows), got {Z.shape[0]}")
    return Z, V


def _train_test(codes_train, factors_train, codes_test, factors_test):
    """The four arrays of a train/test evaluation, their shapes checked against each other."""
    Z, V = _paired(codes_train, factors_train, "codes_train", "factors_train")
    Zt, Vt = _paired(codes_test, factors_test, "codes_test", "factors_test")
    if Zt.shape[1] != Z.shape[1]:
        raise ValueError(
            f"codes_test must have the {Z.shape[1]} dimensions of codes_train, got {Zt.shape[1]}"
        )
    if Vt.shape[1] != V.shape[1]:
        raise ValueError(
            f"factors_test must have the {V.shape[1]} factors of factors_train, got {Vt.shape[1]}"
        )
    return Z, V, Zt, Vt


def _factor_names(factor_names, n_factors: int) -> list[str]:
    if factor_names is None:
        return [f"factor {k}" for k in range(n_factors)]
    if isinstance(factor_names, str | bytes):
        raise ValueError(f"factor_names must be a sequence of {n_factors} names, got a string")
    try:
        names = [str(name) for name in factor_names]
    except TypeError:
        raise ValueError(
            f"factor_names must be a sequence of {n_factors} names, got "
            f"{type(factor_names).__name__}"
        ) from None
    if len(names) != n_factors:
        raise ValueError(
            f"factor_names must name each of the {n_factors} factors, got {len(names)} names"
        )
    return names


def _describe(names: list[str], k: int) -> str:
    """How an error message names factor ``k``: its name and its column."""
    return names[k] if names[k] == f"factor {k}" else f"factor {names[k]!r} (column {k})"


def _check_discrete(discrete, n_factors: int) -> list[bool]:
    if discrete is None:
        return [False] * n_factors
    if isinstance(discrete, str | bytes) or not isinstance(discrete, Sequence | np.ndarray):
        raise ValueError(
            f"discrete must be a sequence of {n_factors} bools (one per factor), got "
            f"{type(discrete).__name__}"
        )
    flags = list(discrete)
    if len(flags) != n_factors:
        raise ValueError(
            f"discrete must have one entry per factor: the factors have {n_factors} columns, "
            f"discrete has {len(flags)} entries"
        )
    for k, flag in enumerate(flags):
        if not isinstance(flag, bool | np.bool_):
            raise ValueError(f"discrete[{k}] must be True or False, got {flag!r}")
    return [bool(flag) for flag in flags]


def _labels(column: np.ndarray) -> tuple[np.ndarray, int]:
    """A factor's values as class indices ``0..L-1`` (its distinct values, sorted), and ``L``."""
    values, labels = np.unique(column, return_inverse=True)
    return labels.reshape(-1), len(values)


def _require_variation(V: np.ndarray, names: list[str], where: str) -> None:
    for k in range(V.shape[1]):
        if np.ptp(V[:, k]) == 0:
            raise ValueError(
                f"{_describe(names, k)} takes a single value ({V[0, k]:g}) {where}: there is "
                "nothing to predict or measure for it; drop that factor"
            )


def _gaps(scores: np.ndarray) -> np.ndarray:
    """Per column, the largest entry minus the second largest (minus 0 when there is one row)."""
    ordered = -np.sort(-scores, axis=0)
    second = ordered[1] if scores.shape[0] > 1 else np.zeros(scores.shape[1])
    return ordered[0] - second


# ---------------------------------------------------------------------------------------- MIG
def _discretise(column: np.ndarray, bins: int) -> np.ndarray:
    """Bin indices ``0..bins-1`` of ``bins`` equal-width bins over the column's own range (the
    last bin closed on the right); a constant column falls in a single bin."""
    edges = np.histogram_bin_edges(column, bins=bins)
    return np.digitize(column, edges[1:-1])


def mutual_information_gap(codes, factors, *, bins: int = 20, factor_names=None) -> dict:
    """MIG of ``codes [N, D]`` for the discrete ``factors [N, K]`` (module docstring).

    Returns ``{"mig": the mean normalised gap, "per_factor": [K] gaps, "mutual_information":
    [D, K] plug-in MI in nats, "entropy": [K] factor entropies in nats, "top_dimensions": [K]
    the dimension j(k) of highest MI per factor, "factor_names": [K]}``.
    """
    from sklearn.metrics import mutual_info_score

    Z, V = _paired(codes, factors, "codes", "factors")
    bins = check_int(bins, "bins", minimum=2)
    names = _factor_names(factor_names, V.shape[1])
    _require_variation(V, names, "in factors (its entropy H is 0, so its MIG term is undefined)")
    n_items, n_codes = Z.shape
    labels = [_labels(V[:, k])[0] for k in range(V.shape[1])]
    entropy = np.empty(V.shape[1])
    for k, lab in enumerate(labels):
        p = np.bincount(lab) / n_items
        entropy[k] = float(-(p * np.log(p)).sum())
    binned = [_discretise(Z[:, i], bins) for i in range(n_codes)]
    mi = np.array([[mutual_info_score(lab, b) for lab in labels] for b in binned])
    mi = mi.reshape(n_codes, V.shape[1])
    per_factor = _gaps(mi) / entropy
    return {
        "mig": float(per_factor.mean()),
        "per_factor": [float(g) for g in per_factor],
        "mutual_information": mi,
        "entropy": entropy,
        "top_dimensions": [int(i) for i in np.argmax(mi, axis=0)],
        "factor_names": names,
    }


# ---------------------------------------------------------------------------------------- DCI
def _entropies(P: np.ndarray, base: int, axis: int) -> np.ndarray:
    """Entropies to log ``base`` of the distributions along ``axis`` of ``P`` (``0 log 0 = 0``;
    to base 1, the only distribution there is has entropy 0)."""
    if base == 1:
        return np.zeros(P.shape[1 - axis])
    logs = np.log(P, out=np.zeros_like(P), where=P > 0)
    return -(P * logs).sum(axis=axis) / math.log(base)


def dci_from_importance(importance) -> dict:
    """Disentanglement and completeness from an importance matrix ``R [D, K]`` (code
    dimensions × factors, non-negative, not all zero), the closed-form step of :func:`dci`.

    Returns ``{"disentanglement": Σ_i ρ_i D_i, "completeness": mean_j C_j,
    "per_code_disentanglement": [D], "per_factor_completeness": [K], "code_weights": [D] ρ}``;
    an all-zero row has ``ρ_i = D_i = 0``, an all-zero column ``C_j = 0`` (module docstring).
    """
    R = _as_matrix(importance, "importance")
    if (R < 0).any():
        raise ValueError(f"importance must be non-negative, got a minimum of {R.min():.3g}")
    total = float(R.sum())
    if not total > 0:
        raise ValueError("importance is all zero: no code dimension matters to any factor")
    n_codes, n_factors = R.shape

    row_mass = R.sum(axis=1)
    used = row_mass > 0
    per_code = np.zeros(n_codes)
    P = R[used] / row_mass[used, None]
    per_code[used] = np.clip(1.0 - _entropies(P, n_factors, axis=1), 0.0, 1.0)
    weights = row_mass / total

    column_mass = R.sum(axis=0)
    covered = column_mass > 0
    per_factor = np.zeros(n_factors)
    Q = R[:, covered] / column_mass[covered]
    per_factor[covered] = np.clip(1.0 - _entropies(Q, n_codes, axis=0), 0.0, 1.0)
    return {
        "disentanglement": float((weights * per_code).sum()),
        "completeness": float(per_factor.mean()),
        "per_code_disentanglement": per_code,
        "per_factor_completeness": per_factor,
        "code_weights": weights,
    }


def _dci_model(is_discrete: bool, n_train: int, seed: int):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    model = RandomForestClassifier if is_discrete else RandomForestRegressor
    return model(
        n_estimators=_DCI_TREES,
        max_features=None,
        max_samples=_DCI_ROW_FRACTION,
        min_samples_leaf=max(1, min(_DCI_MIN_LEAF, n_train // 50)),
        random_state=seed,
        n_jobs=1,
    )


def dci(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    *,
    discrete=None,
    seed: int = 0,
    factor_names=None,
) -> dict:
    """DCI disentanglement, completeness and informativeness (module docstring).

    One random forest per factor predicts it from the whole code: a regressor for a continuous
    factor (informativeness: held-out R²), a classifier for one flagged in ``discrete`` (a
    sequence of ``K`` bools, default all continuous; informativeness: held-out accuracy).  The
    importance ``R[:, k]`` is the forest's mean decrease in impurity,
    ``feature_importances_``.

    The forests: 25 trees; **every split sees every dimension** (``max_features=None``), because
    with a random subset an irrelevant dimension is split on whenever the relevant one is not
    offered, and the importance leaks (with ``"sqrt"``, an axis-aligned code's disentanglement
    fell from 1 to about 0.8 and its completeness to about 0.77); each tree is grown on a
    bootstrap half of the training rows (``max_samples=0.5``) with at least 10 items a leaf
    (fewer below 500 training items), which keeps the trees from chasing noise and halves their
    cost.  On 2 cores (a forest uses one, ``n_jobs=1``) 4 000 training items × 20 dimensions ×
    6 factors took 1.3 s for an axis-aligned code and 4 s for pure noise, where the trees grow
    deepest (5.5 s with classifiers).  ``seed`` is each forest's ``random_state``, so a result
    is reproducible.  Permuting the code's dimensions permutes the rows of ``R``, up to which
    of two exactly tied splits the forest takes first; ties are common for a factor with few
    values, and in the tests they moved the scores by under ``1e-4``.

    Returns ``{"disentanglement", "completeness", "informativeness" (mean over factors),
    "per_factor_informativeness": [K], "per_code_disentanglement": [D],
    "per_factor_completeness": [K], "code_weights": [D], "importance": [D, K],
    "factor_names": [K]}``.
    """
    Z, V, Zt, Vt = _train_test(codes_train, factors_train, codes_test, factors_test)
    flags = _check_discrete(discrete, V.shape[1])
    seed = check_nonnegative_int(seed, "seed")
    names = _factor_names(factor_names, V.shape[1])
    _require_variation(V, names, "in factors_train")
    for k, is_discrete in enumerate(flags):
        if not is_discrete and np.ptp(Vt[:, k]) == 0:
            raise ValueError(
                f"{_describe(names, k)} takes a single value in factors_test, so its held-out "
                "R² is undefined; use more test items"
            )

    importance = np.zeros((Z.shape[1], V.shape[1]))
    scores = np.zeros(V.shape[1])
    for k, is_discrete in enumerate(flags):
        model = _dci_model(is_discrete, Z.shape[0], seed)
        if is_discrete:
            _, both = np.unique(np.concatenate([V[:, k], Vt[:, k]]), return_inverse=True)
            y, y_test = both[: len(V)], both[len(V) :]
            model.fit(Z, y)
            scores[k] = float(np.mean(model.predict(Zt) == y_test))
        else:
            model.fit(Z, V[:, k])
            residual = Vt[:, k] - model.predict(Zt)
            spread = Vt[:, k] - Vt[:, k].mean()
            scores[k] = 1.0 - float(residual @ residual) / float(spread @ spread)
        importance[:, k] = model.feature_importances_
    if not importance.sum() > 0:
        raise ValueError(
            "no forest made a single split: codes_train has too few items or no variation to "
            "predict any factor from"
        )
    out = dci_from_importance(importance)
    out.update(
        informativeness=float(scores.mean()),
        per_factor_informativeness=scores,
        importance=importance,
        factor_names=names,
    )
    return out


# ---------------------------------------------------------------------------------------- SAP
def sap_score(
    codes_train, factors_train, codes_test, factors_test, *, discrete=None, factor_names=None
) -> dict:
    """SAP of a code for its factors (module docstring).

    The score ``S[i, k]`` of a continuous factor is ``corr(z_i, v_k)²`` on the training items
    (the R² of the least-squares line, which a one-feature fit cannot overfit to speak of).  For
    a factor flagged in ``discrete`` it is the accuracy on the test items of a decision tree fit
    on the training items of ``z_i`` alone, with at least 1 % of those items a leaf.  A tree
    rather than a linear classifier, because a single feature with ``L > 2`` ordered classes
    needs intervals: a one-vs-rest linear classifier on one feature rarely gives a middle class
    an interval of its own, and so under-reads even a perfect code.  A dimension with zero
    variance in the training items scores 0.

    Returns ``{"sap": the mean gap, "per_factor": [K] gaps, "scores": [D, K] S,
    "factor_names": [K]}``.
    """
    Z, V, Zt, Vt = _train_test(codes_train, factors_train, codes_test, factors_test)
    flags = _check_discrete(discrete, V.shape[1])
    names = _factor_names(factor_names, V.shape[1])
    _require_variation(V, names, "in factors_train")
    n_codes = Z.shape[1]
    varies = np.ptp(Z, axis=0) > 0
    scores = np.zeros((n_codes, V.shape[1]))
    for k, is_discrete in enumerate(flags):
        if is_discrete:
            scores[:, k] = _accuracies(Z, V[:, k], Zt, Vt[:, k], varies)
        else:
            v = V[:, k] - V[:, k].mean()
            for i in np.flatnonzero(varies):
                z = Z[:, i] - Z[:, i].mean()
                denominator = float(z @ z) * float(v @ v)
                if denominator > 0:
                    scores[i, k] = min(1.0, float(z @ v) ** 2 / denominator)
    per_factor = _gaps(scores)
    return {
        "sap": float(per_factor.mean()),
        "per_factor": [float(g) for g in per_factor],
        "scores": scores,
        "factor_names": names,
    }


def _accuracies(Z, v, Zt, vt, varies) -> np.ndarray:
    """Held-out accuracy of a one-feature decision tree per code dimension (0 where constant)."""
    from sklearn.tree import DecisionTreeClassifier

    _, both = np.unique(np.concatenate([v, vt]), return_inverse=True)
    y, y_test = both[: len(v)], both[len(v) :]
    out = np.zeros(Z.shape[1])
    for i in np.flatnonzero(varies):
        tree = DecisionTreeClassifier(min_samples_leaf=max(1, len(y) // 100), random_state=0)
        tree.fit(Z[:, [i]], y)
        out[i] = float(np.mean(tree.predict(Zt[:, [i]]) == y_test))
    return out
