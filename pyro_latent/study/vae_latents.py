"""The VAE-latents experiment's verdicts and tables, from the numbers of
:func:`pyro_latent.vae.metrics.summarize` over several runs.

A verdict is a dict ``{"verdict": "agrees" | "disagrees" | "cannot be tested", "value": …,
"threshold" or "expected": …}``: the number measured and the bound or claim it is compared with,
so that the report's sentence is chosen by data rather than by prose code.  ``"agrees"`` means
every run agrees; ``"partly": True`` marks a disagreement in which some runs agree.  The tables
(:func:`activity_summary`, :func:`latent_size_summary`, :func:`correlation_summary`) gather runs
of several presets.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from pyro_latent.core.checks import check_nonnegative_int, check_positive_int, check_probability
from pyro_latent.vae.metrics import activity_mask, kl_split, mean_sd


def kl_split_verdict(splits: Sequence[Mapping]) -> dict:
    """Does the KL per dimension split the dimensions as the activity threshold does?

    ``splits``: :func:`kl_split` of each run, pooled.  Agrees when every inactive dimension
    carries less KL than every active one: ``value = max KL_inactive`` below
    ``threshold = min KL_active``.  Cannot be tested when ``all_active`` or ``none_active``.
    """
    active = [k for s in splits for k in s["active"]]
    inactive = [k for s in splits for k in s["inactive"]]
    out = {
        "value": max(inactive) if inactive else None,
        "threshold": min(active) if active else None,
        "all_active": not inactive,
        "none_active": not active,
    }
    if not active or not inactive:
        return {"verdict": "cannot be tested", **out}
    return {"verdict": "agrees" if out["value"] < out["threshold"] else "disagrees", **out}


def count_verdict(counts: Sequence[int], expected: tuple[int, int] | None) -> dict:
    """Are the active-unit ``counts`` of a preset's seeds within the ``expected`` range
    ``(lo, hi)`` (inclusive)?

    Agrees when every seed's count is; ``partly`` when some are (``inside`` of ``seeds``).
    Cannot be tested when there is no expected range (a preset the claim does not cover) or no
    count.
    """
    counts = [check_nonnegative_int(c, "every active-unit count") for c in counts]
    if expected is None or not counts:
        return {"verdict": "cannot be tested", "value": counts, "expected": expected}
    lo, hi = (check_nonnegative_int(v, "expected") for v in expected)
    if lo > hi:
        raise ValueError(f"expected must be a range (lo, hi) with lo ≤ hi, got {expected!r}")
    inside = sum(lo <= c <= hi for c in counts)
    return {
        "verdict": "agrees" if inside == len(counts) else "disagrees",
        "partly": 0 < inside < len(counts),
        "value": counts,
        "expected": [lo, hi],
        "inside": inside,
        "seeds": len(counts),
    }


def larger_uses_more(small_counts: Sequence[int], large_counts: Sequence[int]) -> dict:
    """Does the larger model use more dimensions than the smaller one (mean over seeds)?

    ``order``: ``"larger"`` (the larger uses more: agrees), ``"smaller"`` or ``"equal"``
    (disagrees); ``value`` and ``expected``: the smaller's and the larger's mean counts.
    """
    if not small_counts or not large_counts:
        return {"verdict": "cannot be tested", "order": None, "value": None, "expected": None}
    small, large = float(np.mean(small_counts)), float(np.mean(large_counts))
    order = "larger" if large > small else "smaller" if small > large else "equal"
    return {
        "verdict": "agrees" if order == "larger" else "disagrees",
        "order": order,
        "value": small,
        "expected": large,
    }


def latent_size_effect(
    counts: Mapping[int, Sequence[int]], base: int = 20, larger: int = 40, tolerance: float = 1.5
) -> dict:
    """Does growing the latent size from ``base`` to ``larger`` leave the number of active
    units about the same ("little effect")?

    ``value``: the change in the mean count over seeds, ``mean(n_larger) - mean(n_base)``;
    agrees when ``|value| ≤ tolerance``.  ``base`` and ``larger`` are returned with it.
    """
    base = check_positive_int(base, "base")
    larger = check_positive_int(larger, "larger")
    sizes = {"base": base, "larger": larger}
    if not counts.get(base) or not counts.get(larger):
        return {"verdict": "cannot be tested", "value": None, "threshold": tolerance, **sizes}
    change = float(np.mean(counts[larger]) - np.mean(counts[base]))
    return {
        "verdict": "agrees" if abs(change) <= tolerance else "disagrees",
        "value": change,
        "threshold": tolerance,
        **sizes,
    }


def near_cap(counts: Sequence[int], latent_dim: int, slack: int = 1) -> bool:
    """Whether a latent size is (nearly) used up: mean active count ``≥ latent_dim - slack``.
    Such a size caps the count, so it says nothing about how many dimensions a model would
    choose."""
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    slack = check_nonnegative_int(slack, "slack")
    return bool(counts) and float(np.mean(counts)) >= latent_dim - slack


def correlation_ratios(runs: Sequence[Mapping], two_d_runs: Sequence[Mapping] = ()) -> dict:
    """How much weaker the sample correlations are than the mean correlations.

    ``all`` and ``active``: the mean over ``runs`` of ``ρ̄_samples / ρ̄_means`` (mean absolute
    off-diagonal correlations of :func:`correlations`) over all and over the active dimensions,
    NaN runs skipped; ``two_d``: over ``two_d_runs``, the ratio of the means over runs
    (``mean ρ̄_samples / mean ρ̄_means``), since a 2-D space has one pair and single ratios are
    noisy; ``any_inactive``: whether some run of ``runs`` has an inactive dimension.
    """

    def ratio(rs, sampled, mean):
        values = [np.float64(r[sampled]) / r[mean] for r in rs]  # 0/0 is NaN, not an error
        return float(np.nanmean(values)) if values else float("nan")

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN list is NaN
        all_ratio = ratio(runs, "mean_abs_offdiag_samples", "mean_abs_offdiag_means")
        active = ratio(runs, "mean_abs_offdiag_samples_active", "mean_abs_offdiag_means_active")
        two_d = (
            float(
                np.nanmean([r["mean_abs_offdiag_samples"] for r in two_d_runs])
                / np.nanmean([r["mean_abs_offdiag_means"] for r in two_d_runs])
            )
            if two_d_runs
            else float("nan")
        )
    return {
        "all": all_ratio,
        "active": active,
        "two_d": two_d,
        "has_two_d": bool(np.isfinite(two_d)),
        "any_inactive": any(r["active_units"] < len(r["activity"]) for r in runs),
    }


def decorrelation_verdict(
    ratios: Mapping, holds_below: float = 0.5, equal_above: float = 0.8
) -> dict:
    """Locatello et al.'s observation, "the sampled representation is uncorrelated but the
    posterior means are correlated", on :func:`correlation_ratios`.

    Agrees when the samples' correlation over all dimensions is below ``holds_below`` of the
    means' (``value`` = that ratio).  Since ``Cov(z) = Cov(μ) + diag E[σ²]``, ``gap`` says where
    the difference lives:

    * ``"all_active"``: no inactive dimension, so the gap is the posterior noise each keeps;
    * ``"inactive_dims"``: the observation holds over all dimensions but over the active ones
      the ratio exceeds ``equal_above``: the gap lives in the inactive dimensions;
    * ``"active_equal"``: the ratio over the active ones exceeds ``equal_above`` (and the
      observation fails over all);
    * ``"active_gap"``: the gap remains over the active dimensions.
    """
    holds_below = check_probability(holds_below, "holds_below")
    equal_above = check_probability(equal_above, "equal_above")
    all_ratio, active = float(ratios["all"]), float(ratios["active"])
    if not ratios["any_inactive"]:
        gap = "all_active"
    elif all_ratio < holds_below and active > equal_above:
        gap = "inactive_dims"
    elif active > equal_above:
        gap = "active_equal"
    else:
        gap = "active_gap"
    verdict = (
        "cannot be tested"
        if not np.isfinite(all_ratio)
        else "agrees"
        if all_ratio < holds_below
        else "disagrees"
    )
    return {"verdict": verdict, "value": all_ratio, "threshold": holds_below, "gap": gap}


# --- tables over presets: runs of each preset in, the report's numbers and verdicts out ---------

CORRELATION_KEYS = {
    "means_all": "mean_abs_offdiag_means",
    "samples_all": "mean_abs_offdiag_samples",
    "means_active": "mean_abs_offdiag_means_active",
    "samples_active": "mean_abs_offdiag_samples_active",
}
"""The columns of :func:`correlation_summary` and the :func:`summarize` keys they average."""


def _counts(runs: Sequence[Mapping]) -> list[int]:
    return [check_nonnegative_int(r["active_units"], "active_units") for r in runs]


def _check_runs(runs: Mapping[str, Sequence[Mapping]]) -> None:
    empty = [name for name, rs in runs.items() if not rs]
    if not runs or empty:
        raise ValueError(f"every preset needs at least one run; none for {empty or 'any preset'}")


def activity_summary(
    runs: Mapping[str, Sequence[Mapping]],
    post: Mapping[str, tuple[int, int]],
    *,
    smaller: str = "small",
    larger: str = "large",
) -> dict:
    """Active units per preset against a claim, and the two checks the post's counts imply.

    ``runs``: for each preset, the :func:`summarize` dicts of its seeds (each with ``seed``);
    ``post``: the claimed range ``(lo, hi)`` of active units for the presets the claim covers.

    Returns ``presets``, one row per preset: ``seeds``, ``latent_dim`` (``D``), ``test_elbo``
    (:func:`mean_sd`), ``active_units`` (``#{d : A_d > 0.01}`` per seed) and ``post``
    (:func:`count_verdict` against ``post.get(preset)``: cannot be tested for a preset the claim
    does not cover); ``larger_uses_more`` (:func:`larger_uses_more` of ``smaller`` against
    ``larger``); ``kl_split`` (:func:`kl_split_verdict` pooled over the runs of the presets in
    ``post``).
    """
    _check_runs(runs)
    missing = [name for name in (smaller, larger, *post) if name not in runs]
    if missing:
        raise ValueError(f"no runs for the preset(s) {missing}")
    rows = [
        {
            "preset": name,
            "seeds": [int(r["seed"]) for r in rs],
            "latent_dim": len(rs[0]["activity"]),
            "test_elbo": mean_sd([r["test_elbo"] for r in rs]),
            "active_units": _counts(rs),
            "post": count_verdict(_counts(rs), post.get(name)),
        }
        for name, rs in runs.items()
    ]
    splits = [
        kl_split(r["kl_per_dim"], activity_mask(r["activity"])) for name in post for r in runs[name]
    ]
    return {
        "presets": rows,
        "larger_uses_more": larger_uses_more(_counts(runs[smaller]), _counts(runs[larger])),
        "kl_split": kl_split_verdict(splits),
    }


def latent_size_summary(
    sweep: Mapping[int, Sequence[Mapping]], *, base: int = 20, larger: int = 40
) -> dict:
    """One architecture at several latent sizes ``D``: does ``D`` change how many are used?

    ``sweep``: for each latent size, the :func:`summarize` dicts of its seeds.  Returns ``sizes``
    (per ``D`` in increasing order: ``seeds`` (how many), ``active_units`` per seed, ``test_elbo``
    :func:`mean_sd`), ``effect`` (:func:`latent_size_effect` from ``base`` to ``larger``) and
    ``smallest``: the smallest ``D``, its counts and :func:`near_cap` (the count is then bounded
    by ``D`` rather than chosen by the model).
    """
    _check_runs(sweep)
    sizes = sorted(check_positive_int(k, "every latent size") for k in sweep)
    counts = {k: _counts(sweep[k]) for k in sizes}
    smallest = sizes[0]
    return {
        "sizes": [
            {
                "latent_dim": k,
                "seeds": len(sweep[k]),
                "active_units": counts[k],
                "test_elbo": mean_sd([r["test_elbo"] for r in sweep[k]]),
            }
            for k in sizes
        ],
        "effect": latent_size_effect(counts, base=base, larger=larger),
        "smallest": {
            "latent_dim": smallest,
            "active_units": counts[smallest],
            "near_cap": near_cap(counts[smallest], smallest),
        },
    }


def correlation_summary(runs: Mapping[str, Sequence[Mapping]], two_d: Sequence[str] = ()) -> dict:
    """Mean against sample correlations per preset, and Locatello et al.'s observation.

    ``runs``: for each preset, the :func:`summarize` dicts of its seeds; ``two_d``: the presets
    with a 2-D latent space, kept out of the ratios over many dimensions.  Returns ``presets``
    (per preset: ``seeds`` and the :func:`mean_sd` over seeds of each :data:`CORRELATION_KEYS`
    column), ``ratios`` (:func:`correlation_ratios` of the other presets' runs, with the 2-D
    runs apart) and ``observation`` (:func:`decorrelation_verdict` of those ratios).
    """
    _check_runs(runs)
    unknown = [name for name in two_d if name not in runs]
    if unknown:
        raise ValueError(f"two_d names presets without runs: {unknown}")
    many = [r for name, rs in runs.items() if name not in two_d for r in rs]
    ratios = correlation_ratios(many, [r for name in two_d for r in runs[name]])
    return {
        "presets": [
            {"preset": name, "seeds": len(rs)}
            | {col: mean_sd([r[key] for r in rs]) for col, key in CORRELATION_KEYS.items()}
            for name, rs in runs.items()
        ],
        "ratios": ratios,
        "observation": decorrelation_verdict(ratios),
    }
