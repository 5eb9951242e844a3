"""Benchmark of exact inference in the strip-world models, measured side by side in one run.

1. **Marginals against forward–backward.**  ``LocalStateModel.marginals`` on one T=50 sequence
   against two plain numpy scaled forward–backward passes over the same compiled tables: the
   textbook dense one (a ``[S] @ [S, S]`` product per step; target: faster, ratio < 1) and one
   that uses the same structure as the engine, a transition that permutes the states, by
   indexing with the successor and predecessor arrays instead (target: within 2×).
2. **Scaling in T.**  ``marginals`` at T=400 against T=50 (target: at most 10×, i.e. linear).
3. **Batched evidence.**  ``log_evidence`` for 1000 sequences of T=50 (target: under 1 s and
   under 1 GB peak memory, measured in a fresh child process).
4. **The literal program.**  The per-cell Bayes net against the compiled one, to show why the
   compiled form exists.

Both engines are timed: ``hmm`` (the default, log-space forward–backward over the compiled tables)
and ``enum`` (the Pyro program through TraceEnum_ELBO's contraction and its gradient).  Timings are
medians of repeats.  Everything runs on one thread, like the numpy baseline: on a shared 2-core
machine torch's intra-op threads spin against other processes and small operations slow down
twenty-fold, which measures the neighbours rather than the code.
The last line is the machine-readable summary::

    toy_inference marginals_vs_numpy=R marginals_vs_numpy_perm=R scaling_400_over_50=R batch1000_s=S

``marginals_vs_numpy`` is the ratio to the dense numpy pass, ``marginals_vs_numpy_perm`` the
ratio to the permutation numpy pass.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch load their thread pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld  # noqa: E402

EPS = 0.1


def median_time(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_forward_backward(init, trans, emission, obs):
    """Textbook scaled forward–backward in numpy: the baseline."""
    T, n = obs.shape
    lik = emission[:, np.arange(n), obs].prod(-1).T  # [T, S]
    S = len(init)
    alpha = np.empty((T, S))
    c = np.empty(T)
    a = init * lik[0]
    c[0] = a.sum()
    alpha[0] = a / c[0]
    for t in range(1, T):
        a = (alpha[t - 1] @ trans) * lik[t]
        c[t] = a.sum()
        alpha[t] = a / c[t]
    beta = np.ones(S)
    gamma = np.empty_like(alpha)
    gamma[-1] = alpha[-1]
    for t in range(T - 2, -1, -1):
        beta = (trans @ (lik[t + 1] * beta)) / c[t + 1]
        gamma[t] = alpha[t] * beta
    return np.log(c).sum(), gamma


def permutation_arrays(trans):
    """``(successor, predecessor)`` of a 0/1 permutation matrix, checked."""
    ones = trans == 1
    if not (((trans == 0) | ones).all() and (ones.sum(0) == 1).all() and (ones.sum(1) == 1).all()):
        raise ValueError("the transition is not a permutation")
    return ones.argmax(1), ones.argmax(0)


def numpy_permutation_forward_backward(init, successor, predecessor, emission, obs):
    """The same scaled forward–backward for ``P(s, s') = [s' = successor[s]]``: the products
    ``α P`` and ``P (ℓ β)`` become gathers, ``α[predecessor]`` and ``(ℓ β)[successor]``."""
    T, n = obs.shape
    lik = emission[:, np.arange(n), obs].prod(-1).T  # [T, S]
    S = len(init)
    alpha = np.empty((T, S))
    c = np.empty(T)
    a = init * lik[0]
    c[0] = a.sum()
    alpha[0] = a / c[0]
    for t in range(1, T):
        a = alpha[t - 1][predecessor] * lik[t]
        c[t] = a.sum()
        alpha[t] = a / c[t]
    beta = np.ones(S)
    gamma = np.empty_like(alpha)
    gamma[-1] = alpha[-1]
    for t in range(T - 2, -1, -1):
        beta = (lik[t + 1] * beta)[successor] / c[t + 1]
        gamma[t] = alpha[t] * beta
    return np.log(c).sum(), gamma


def batch_child(batch: int, T: int) -> None:
    """Run in a fresh process: time and peak memory of one batched log_evidence."""
    world = StripWorld()
    torch.set_num_threads(1)
    model = LocalStateModel(world, EPS)
    g = torch.Generator().manual_seed(0)
    obs = torch.stack([world.sample_episode(T, EPS, g)[1] for _ in range(batch)])
    model.log_evidence(obs[:2])  # warm up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out = model.log_evidence(obs)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert torch.isfinite(out).all()
    print(
        json.dumps(
            {"seconds": elapsed, "extra_peak_mb": (peak - base) / 1024, "peak_mb": peak / 1024}
        )
    )


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_child:
        batch_child(*args.batch_child)
        return

    torch.manual_seed(0)
    world = StripWorld()
    g = torch.Generator().manual_seed(1)
    obs50 = world.sample_episode(50, EPS, g)[1]
    obs400 = world.sample_episode(400, EPS, g)[1]
    fast = LocalStateModel(world, EPS)
    enum = LocalStateModel(world, EPS, engine="enum")

    init, trans, emission = (x.numpy() for x in fast.compiled_tables())
    np_obs = obs50.numpy()
    log_z, gamma = numpy_forward_backward(init, trans, emission, np_obs)
    successor, predecessor = permutation_arrays(trans)
    log_z_perm, gamma_perm = numpy_permutation_forward_backward(
        init, successor, predecessor, emission, np_obs
    )
    assert abs(log_z - log_z_perm) < 1e-9 and np.allclose(gamma, gamma_perm, atol=1e-12)
    ours = fast.marginals(obs50)["cells"]
    expected = torch.einsum(
        "ts,snc->tnc",
        torch.from_numpy(gamma),
        torch.nn.functional.one_hot(fast.configs, 6).double(),
    )
    assert torch.allclose(ours, expected, atol=1e-8), "engines disagree with numpy"
    assert abs(log_z - fast.log_evidence(obs50).item()) < 1e-6

    r = args.repeats
    t_numpy = median_time(lambda: numpy_forward_backward(init, trans, emission, np_obs), r)
    t_perm = median_time(
        lambda: numpy_permutation_forward_backward(init, successor, predecessor, emission, np_obs),
        r,
    )
    t_hmm50 = median_time(lambda: fast.marginals(obs50), r)
    t_hmm400 = median_time(lambda: fast.marginals(obs400), r)
    t_enum50 = median_time(lambda: enum.marginals(obs50), max(1, r // 2))
    t_enum400 = median_time(lambda: enum.marginals(obs400), 1)
    print("1. marginals of model 2, one sequence, T=50")
    print("   (ratios: to the dense numpy pass, to the permutation numpy pass)")
    print(f"   numpy forward-backward, dense         {t_numpy * 1e3:8.2f} ms")
    print(f"   numpy forward-backward, permutation   {t_perm * 1e3:8.2f} ms")
    for name, t in (("engine='hmm' (default)", t_hmm50), ("engine='enum' (Pyro)", t_enum50)):
        print(f"   {name:<37} {t * 1e3:8.2f} ms   ratios {t / t_numpy:.2f}, {t / t_perm:.2f}")
    print("2. scaling in T: marginals at T=400 over T=50")
    print(f"   engine='hmm'   {t_hmm400 * 1e3:8.2f} ms   ratio {t_hmm400 / t_hmm50:.2f}")
    print(f"   engine='enum'  {t_enum400 * 1e3:8.2f} ms   ratio {t_enum400 / t_enum50:.2f}")

    child = subprocess.run(
        [sys.executable, __file__, "--batch-child", "1000", "50"],
        capture_output=True,
        text=True,
        check=True,
    )
    batch = json.loads(child.stdout.strip().splitlines()[-1])
    print("3. log_evidence, 1000 sequences of T=50 (fresh process)")
    print(
        f"   {batch['seconds']:.3f} s; peak resident memory of the whole process "
        f"{batch['peak_mb']:.0f} MB, of which this call added {batch['extra_peak_mb']:.0f} MB"
    )

    print("4. the literal per-cell program against the compiled one (log_evidence, one sequence)")
    for n, T in [(5, 2), (5, 4), (10, 1), (10, 2)]:
        small = StripWorld(n)
        o = small.sample_episode(T, EPS, g)[1]
        literal = LocalStateModel(small, EPS, form="literal")
        compiled = LocalStateModel(small, EPS)
        t_lit = median_time(lambda o=o, m=literal: m.log_evidence(o), 1)
        t_comp = median_time(lambda o=o, m=compiled: m.log_evidence(o), r)
        print(
            f"   n={n:2d} T={T}: literal {t_lit * 1e3:9.1f} ms, compiled {t_comp * 1e3:7.2f} ms"
            f"  ({t_lit / t_comp:,.0f}x)"
        )
    m1 = ObjectCentricModel(world, EPS)
    t_m1 = median_time(lambda: m1.marginals(obs50), r)
    print(f"   (model 1, engine='hmm', marginals T=50: {t_m1 * 1e3:.2f} ms)")

    print(
        f"toy_inference marginals_vs_numpy={t_hmm50 / t_numpy:.2f} "
        f"marginals_vs_numpy_perm={t_hmm50 / t_perm:.2f} "
        f"scaling_400_over_50={t_hmm400 / t_hmm50:.2f} batch1000_s={batch['seconds']:.3f}"
    )


if __name__ == "__main__":
    main()
