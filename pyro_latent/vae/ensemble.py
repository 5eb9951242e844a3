r"""Several seeds of one VAE configuration trained as **one** batched Pyro program.

Training one small VAE is dominated by the fixed cost of a step (tracing the Pyro programs,
autograd's bookkeeping, the optimiser's call), not by arithmetic.  ``R`` runs that share a
configuration can share that cost: every weight gets a leading ``run`` dimension,

    W ∈ ℝ^{R × out × in},   b ∈ ℝ^{R × out},   h_r = x_r W_rᵀ + b_r   (``torch.baddbmm``),

and the model and guide sample inside a ``pyro.plate("runs", R)`` outside the data plate::

    for r in runs:                    (plate, dim -2)
        for n in data:                (plate, dim -1)
            z_rn ~ Normal(0, I_D)                          model
            x_rn ~ Bernoulli(logits = f_θr(z_rn))
            z_rn ~ Normal(μ_φr(x_rn), diag σ_φr(x_rn)²)    guide

One ``torch.optim.Adam`` steps the stacked parameters.  Adam is elementwise, so it is ``R``
independent optimisers; the loss is the sum of the runs' own losses

    L = Σ_r L_r,   L_r = Σ_{n∈B_r} [KL(q_φr(z | x_rn) ‖ N(0, I)) - log p_θr(x_rn | z_rn)],

and since the runs share no parameter, ``∂L/∂θ_r = ∂L_r/∂θ_r``: each run gets exactly its own
gradient.  The Bernoulli log-density is :class:`~pyro_latent.vae.model.GreyBernoulli`'s, as in
``VAE.likelihood``: about four times faster on the CPU than torch's ``log_sigmoid`` path (tested
against torch's binary cross-entropy).

**A run is still its seed.**  Run ``r`` starts from the weights :func:`train_vae` draws for its
seed, shuffles its own minibatches with its own generator (the same :func:`make_loader`), and
draws the guide's noise ``ε_r`` from its own generator, started in the state the single run's
global RNG has when its loop begins.  So an ensemble run follows the single run step for step;
the two differ only by the rounding of a batched against an unbatched matrix product (tested:
after 50 steps the weights agree to 1e-5 relative, the ELBO curves to float tolerance).  On
CUDA the noise comes from a CUDA generator seeded like the single run's.

**Checkpoints stay per run**: after every epoch each run's slice (weights, Adam moments, its
two generators' states) is written to ``runs/<name>-<seed>/checkpoint.pt`` exactly as
:func:`train_vae` writes it, so :func:`load_vae` reads it, a single run resumes from it, and an
ensemble resumes from single-run checkpoints (of one epoch count).  A non-finite loss in any run
stops the ensemble before that step is taken, names the runs, and leaves every checkpoint of the
previous epoch as it was.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.kl import kl_divergence
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from pyro_latent.core.checks import check_positive_int
from pyro_latent.vae.data import N_PIXELS, ImageData
from pyro_latent.vae.model import VAE, GreyBernoulli, VAEConfig
from pyro_latent.vae.training import (
    DEFAULT_RUNS_DIR,
    Checkpoint,
    CheckpointError,
    _as_images,
    _check_matches,
    _check_optim_state,
    _check_seed,
    _data_record,
    checkpoint_path,
    make_loader,
    read_checkpoint,
    remove_stale_temporaries,
    resolve_config,
    resolve_device,
    write_checkpoint,
)

__all__ = ["EnsembleFailedError", "StackedLinear", "VAEEnsemble", "train_ensemble"]


class EnsembleFailedError(FloatingPointError):
    """A run of an ensemble produced a non-finite loss; ``runs`` names it (or them)."""

    def __init__(self, runs: Sequence[str], step: int, epoch: int):
        self.runs = list(runs)
        super().__init__(
            f"run(s) {', '.join(self.runs)} gave a non-finite loss at step {step} of epoch "
            f"{epoch}; the ensemble stopped before taking it, and every checkpoint of the "
            "previous epoch is unchanged"
        )


class StackedLinear(nn.Module):
    """``R`` independent ``nn.Linear(n_in, n_out)`` layers: ``x [R, B, n_in] ↦ [R, B, n_out]``.

    ``weight [R, n_out, n_in]`` and ``bias [R, n_out]``: slice ``r`` of each is the weight and
    bias of run ``r``'s ``nn.Linear``, so state dicts convert by indexing."""

    def __init__(self, n_runs: int, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_runs, n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_runs, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(-2), x, self.weight.transpose(-1, -2))


def _stacked_mlp(n_runs: int, sizes: Sequence[int]) -> nn.Sequential:
    """The layout of :func:`pyro_latent.vae.model._mlp` (same indices), one layer per run."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(StackedLinear(n_runs, n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _StackedEncoder(nn.Module):
    def __init__(self, n_runs: int, latent_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = _stacked_mlp(n_runs, [N_PIXELS, *hidden, 2 * latent_dim])
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw_scale = self.net(x).split(self.latent_dim, dim=-1)
        return loc, F.softplus(raw_scale) + 1e-4


class _StackedDecoder(nn.Module):
    def __init__(self, n_runs: int, latent_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = _stacked_mlp(n_runs, [latent_dim, *reversed(hidden), N_PIXELS])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _GivenNoiseNormal(dist.Normal):
    """``Normal(loc, scale)`` whose reparametrised draw is ``loc + scale · noise`` for a given
    standard-normal ``noise``: the guide's sample with each run's own random stream.  It is a
    ``Normal``, so the analytic KL to the prior applies."""

    def __init__(self, loc, scale, noise, validate_args=None):
        super().__init__(loc, scale, validate_args=validate_args)
        if noise.shape != self.batch_shape:
            raise ValueError(f"noise {tuple(noise.shape)} ≠ batch shape {self.batch_shape}")
        self.noise = noise

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return _GivenNoiseNormal(
            self.loc.expand(batch_shape),
            self.scale.expand(batch_shape),
            self.noise.expand(batch_shape),
            validate_args=False,
        )

    def rsample(self, sample_shape=()):
        if tuple(sample_shape):
            raise NotImplementedError("one draw per site: the noise is given")
        return self.loc + self.scale * self.noise


def _refuse_unstackable(config: VAEConfig) -> None:
    """A :class:`ValueError` for a configuration no stacked program here trains: a mixture
    prior or convolutional networks (an ensemble would silently train the Normal-prior MLP
    under their name)."""
    if not config.stackable:
        what = (
            f"a {config.prior_components}-component mixture prior"
            if config.prior_components
            else f"{config.architecture} networks"
        )
        raise ValueError(
            f"{config.name!r} has {what}, which an ensemble does not stack: train its seeds "
            "with train_vae one by one (train_many does)"
        )


class VAEEnsemble(nn.Module):
    """``R`` VAEs of one :class:`VAEConfig` with stacked weights, as one Pyro model/guide pair.

    Build it from trained or freshly initialised VAEs (:meth:`from_vaes`, :meth:`initial`) and
    take a run back out with :meth:`member`; the state dict of member ``r`` is the slice ``r``
    of every stacked tensor, under the single VAE's keys."""

    def __init__(self, config: VAEConfig, n_runs: int):
        super().__init__()
        _refuse_unstackable(config)
        self.config = config
        self.n_runs = check_positive_int(n_runs, "n_runs")
        self.encoder = _StackedEncoder(self.n_runs, config.latent_dim, config.hidden)
        self.decoder = _StackedDecoder(self.n_runs, config.latent_dim, config.hidden)

    @classmethod
    def from_vaes(cls, vaes: Sequence[VAE]) -> VAEEnsemble:
        """Stack ``vaes`` (one config, at least one) in the given order."""
        vaes = list(vaes)
        if not vaes or not all(isinstance(v, VAE) for v in vaes):
            raise TypeError("from_vaes needs a non-empty sequence of VAE")
        configs = {v.config for v in vaes}
        if len(configs) != 1:
            raise ValueError(f"an ensemble has one configuration; got {len(configs)}: {configs}")
        ensemble = cls(vaes[0].config, len(vaes)).to(vaes[0].dtype)
        states = [v.state_dict() for v in vaes]
        stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
        ensemble.load_state_dict(stacked)
        return ensemble

    @classmethod
    def initial(cls, config: VAEConfig, seeds: Sequence[int]) -> VAEEnsemble:
        """The weights :func:`train_vae` starts each seed from (``pyro.set_rng_seed(seed)``,
        then ``VAE(config)``).  Leaves the global RNG as the last seed's run would."""
        vaes = []
        for seed in seeds:
            pyro.set_rng_seed(_check_seed(seed))
            vaes.append(VAE(config))
        return cls.from_vaes(vaes)

    def member_state(self, run: int) -> dict[str, torch.Tensor]:
        """Run ``run``'s weights under :class:`VAE`'s state-dict keys (copies, on the CPU)."""
        return {k: v[run].detach().cpu().clone() for k, v in self.state_dict().items()}

    def member(self, run: int) -> VAE:
        """Run ``run`` as a stand-alone :class:`VAE` (a copy, same dtype and device)."""
        if not 0 <= int(run) < self.n_runs:
            raise IndexError(f"run must be in 0..{self.n_runs - 1}; got {run}")
        vae = VAE(self.config).to(next(self.parameters()).dtype)
        vae.load_state_dict(self.member_state(int(run)))
        return vae.to(next(self.parameters()).device)

    def likelihood(self, logits: torch.Tensor) -> dist.TorchDistribution:
        """:meth:`VAE.likelihood`, over stacked logits."""
        if self.config.likelihood == "continuous_bernoulli":
            return dist.ContinuousBernoulli(logits=logits).to_event(1)
        return GreyBernoulli(logits=logits).to_event(1)

    def model(self, x: torch.Tensor) -> None:
        """``z_rn ~ N(0, I)``, ``x_rn ~ p_θr(x | z_rn)`` for ``x [R, B, 784]``."""
        runs, batch = x.shape[:2]
        with pyro.plate("runs", runs, dim=-2), pyro.plate("data", batch, dim=-1):
            prior = dist.Normal(x.new_zeros(self.config.latent_dim), 1.0)
            z = pyro.sample("z", prior.to_event(1))
            pyro.sample("x", self.likelihood(self.decoder(z)), obs=x)

    def guide(self, x: torch.Tensor, noise: torch.Tensor) -> None:
        """``z_rn = μ_φr(x_rn) + σ_φr(x_rn) ε_rn`` for the given ``noise ε [R, B, D]``."""
        runs, batch = x.shape[:2]
        with pyro.plate("runs", runs, dim=-2), pyro.plate("data", batch, dim=-1):
            loc, scale = self.encoder(x)
            pyro.sample("z", _GivenNoiseNormal(loc, scale, noise).to_event(1))

    def losses(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``[L_r]``: each run's negative ELBO of its minibatch ``x_r`` (KL in closed form),
        read off the traces of the guide and of the model replayed against it."""
        guide_trace = poutine.trace(self.guide).get_trace(x, noise)
        model_trace = poutine.trace(poutine.replay(self.model, trace=guide_trace)).get_trace(x)
        q, p = guide_trace.nodes["z"]["fn"], model_trace.nodes["z"]["fn"]
        observed = model_trace.nodes["x"]
        log_likelihood = observed["fn"].log_prob(observed["value"])  # [R, B]
        return (kl_divergence(q, p) - log_likelihood).sum(-1)


# --- training -------------------------------------------------------------------------------


def _noise_generator(device: torch.device, seed: int) -> torch.Generator:
    """Run ``seed``'s stream for the guide's noise, as its single run would draw it: on the CPU,
    the global RNG's state right after the initial weights were drawn; on CUDA, the CUDA RNG
    as ``pyro.set_rng_seed(seed)`` leaves it."""
    if device.type == "cuda":
        return torch.Generator(device=device).manual_seed(seed)
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return generator


def _rng_state(cpu_state, noise: torch.Generator, loader: torch.Generator, device) -> dict:
    """The single run's checkpoint RNG layout: ``torch`` (the global CPU state), ``loader``,
    and ``cuda`` on CUDA."""
    if device.type == "cuda":
        return {"torch": cpu_state, "loader": loader.get_state(), "cuda": noise.get_state()}
    return {"torch": noise.get_state(), "loader": loader.get_state()}


def _member_optim_state(optimizer: torch.optim.Optimizer, run: int) -> dict:
    state = optimizer.state_dict()
    sliced = {
        index: {
            key: (value[run].clone() if key in ("exp_avg", "exp_avg_sq") else value.clone())
            for key, value in moments.items()
        }
        for index, moments in state["state"].items()
    }
    return {"state": sliced, "param_groups": state["param_groups"]}


def _stacked_optim_state(states: Sequence[dict]) -> dict:
    """One Adam state for the stacked parameters from the runs' own (same step count)."""
    first = states[0]
    stacked = {}
    for index, moments in first["state"].items():
        steps = {float(s["state"][index]["step"]) for s in states}
        if len(steps) != 1:
            raise ValueError(f"the runs' Adam states are at different steps: {sorted(steps)}")
        stacked[index] = {
            key: (
                torch.stack([s["state"][index][key] for s in states])
                if key in ("exp_avg", "exp_avg_sq")
                else value
            )
            for key, value in moments.items()
        }
    return {"state": stacked, "param_groups": first["param_groups"]}


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of ints; got {seeds!r}")
    seeds = [_check_seed(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (each is one run); got {seeds}")
    return seeds


def _resume_states(paths, config, seeds, data_record, epochs, resume: bool) -> list | None:
    """The runs' checkpoints to resume from (all or none), checked to be of one epoch."""
    existing = [p for p in paths if p is not None and p.exists()]
    if not existing:
        return None
    if not resume:
        raise CheckpointError(
            f"{existing[0]} already exists; pass resume=True (`--resume`) to continue or reuse "
            "it, or choose another runs directory. Nothing was overwritten."
        )
    if len(existing) != len(paths):
        missing = [
            f"{config.name}-{s}" for s, p in zip(seeds, paths, strict=True) if not p.exists()
        ]
        raise CheckpointError(
            f"an ensemble resumes all its runs or none; no checkpoint for {', '.join(missing)}. "
            "Train the runs that have one separately (train_vae), or move them aside."
        )
    ckpts = [read_checkpoint(p) for p in paths]
    for ckpt, seed in zip(ckpts, seeds, strict=True):
        _check_matches(ckpt, config, seed, data_record, epochs)
    if len({c.epoch for c in ckpts}) != 1:
        found = ", ".join(
            f"{config.name}-{s}: {c.epoch}" for s, c in zip(seeds, ckpts, strict=True)
        )
        raise CheckpointError(
            f"an ensemble resumes runs at one epoch; the checkpoints have {found}. Nothing was "
            "overwritten; group the runs by epoch (train_many does) or train them separately."
        )
    return ckpts


def train_ensemble(
    config: VAEConfig | str,
    data: ImageData | torch.Tensor,
    epochs: int,
    seeds: Sequence[int],
    device: str | torch.device | None = None,
    checkpoint_dir: str | os.PathLike | None = DEFAULT_RUNS_DIR,
    *,
    resume: bool = False,
    progress: bool = True,
) -> list[VAE]:
    """Train one run per seed of ``config`` as one batched program; return the VAEs (eval mode).

    The arguments are :func:`~pyro_latent.vae.training.train_vae`'s, with ``seeds`` (distinct)
    in place of one seed; each returned VAE carries ``history_``, ``seed_`` and
    ``checkpoint_path_`` as a single run does, and its checkpoint is the single run's format.
    ``resume`` continues the runs from their checkpoints, which must all exist and be at one
    epoch.  See the module docstring for what ties a run to its single-run training.

    Raises:
        EnsembleFailedError: a run's loss became non-finite (named; nothing saved is lost).
    """
    config = resolve_config(config)
    _refuse_unstackable(config)
    epochs = check_positive_int(epochs, "epochs")
    seeds = _check_seeds(seeds)
    device = resolve_device(device)
    names = [f"{config.name}-{s}" for s in seeds]
    paths = [
        None if checkpoint_dir is None else checkpoint_path(config, s, checkpoint_dir)
        for s in seeds
    ]
    for path in paths:
        if path is not None:
            remove_stale_temporaries(path.parent)

    # Each run's initial weights and noise stream, in the order its single run draws them.
    members, noise, cpu_states = [], [], []
    for seed in seeds:
        pyro.set_rng_seed(seed)
        members.append(VAE(config))
        cpu_states.append(torch.get_rng_state())
        noise.append(_noise_generator(device, seed))
    images = _as_images(data, members[0])
    data_record = _data_record(images)
    loaders_rng = [torch.Generator().manual_seed(s) for s in seeds]
    histories: list[list[float]] = [[] for _ in seeds]
    optim_states = None
    ckpts = _resume_states(paths, config, seeds, data_record, epochs, resume)
    if ckpts is not None:
        try:
            for r, ckpt in enumerate(ckpts):
                members[r].load_state_dict(ckpt.model_state)
                _check_optim_state(ckpt.optim_state, members[r])
                loaders_rng[r].set_state(ckpt.rng_state["loader"])
                cpu_states[r] = ckpt.rng_state["torch"]
                noise[r].set_state(ckpt.rng_state["cuda" if device.type == "cuda" else "torch"])
                if len(ckpt.history) != ckpt.epoch:
                    raise ValueError(f"{ckpt.epoch} epochs but a history of {len(ckpt.history)}")
                histories[r] = list(ckpt.history)
            optim_states = _stacked_optim_state([c.optim_state for c in ckpts])
        except Exception as err:
            raise CheckpointError(
                f"the ensemble {', '.join(names)} cannot be resumed: a saved state does not "
                f"restore ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
                "Nothing was overwritten; delete the checkpoints to retrain."
            ) from None

    ensemble = VAEEnsemble.from_vaes(members).to(device).train()
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=config.lr, foreach=True)
    if optim_states is not None:
        optimizer.load_state_dict(optim_states)
    images = images.to(device)
    loaders = [make_loader(images, config.batch_size, g) for g in loaders_rng]
    n, batch_shape = images.shape[0], (config.batch_size, config.latent_dim)
    _validate(ensemble, images[: config.batch_size].expand(len(seeds), -1, -1))

    start = len(histories[0])
    epoch_bar = tqdm(
        range(start, epochs),
        initial=start,
        total=epochs,
        desc=f"{config.name} × {len(seeds)}",
        unit="epoch",
        disable=not progress,
    )
    for epoch in epoch_bar:
        totals = torch.zeros(len(seeds), dtype=torch.float64, device=device)
        seen = 0
        # Every run's permutation of the epoch at once; a step's minibatches are one gather.
        orders = torch.stack([loader.epoch_order() for loader in loaders]).to(device)
        batches = tqdm(
            range(0, n, config.batch_size),
            desc=f"epoch {epoch + 1}",
            unit="batch",
            leave=False,
            disable=not progress,
        )
        with pyro.validation_enabled(False):
            for step, begin in enumerate(batches):
                index = orders[:, begin : begin + config.batch_size]
                x = images.index_select(0, index.reshape(-1)).view(*index.shape, -1)
                shape = (x.shape[1], batch_shape[1])
                eps = torch.stack(
                    [
                        torch.empty(shape, device=device, dtype=x.dtype).normal_(generator=g)
                        for g in noise
                    ]
                )
                losses = ensemble.losses(x, eps)
                loss = losses.sum()
                # The sum is finite exactly when every run's loss is (a NaN or an infinity in
                # one run makes it NaN or infinite), so one scalar read guards all the runs.
                if not math.isfinite(loss.item()):
                    finite = torch.isfinite(losses)
                    bad = [names[r] for r in range(len(seeds)) if not bool(finite[r])]
                    raise EnsembleFailedError(bad, step + 1, epoch + 1)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                totals.add_(losses.detach())
                seen += x.shape[1]
                if progress and step % 20 == 0:
                    batches.set_postfix(elbo=f"{-float(totals.mean()) / seen:.2f}")
        batches.close()
        if seen != n:
            raise RuntimeError(f"an epoch saw {seen} of {n} images")
        totals = totals.cpu()
        for r in range(len(seeds)):
            histories[r].append(-float(totals[r]) / n)
        epoch_bar.set_postfix(elbo=f"{sum(h[-1] for h in histories) / len(seeds):.2f}")
        for r, path in enumerate(paths):
            if path is None:
                continue
            write_checkpoint(
                path,
                Checkpoint(
                    config=config,
                    seed=seeds[r],
                    epoch=epoch + 1,
                    history=histories[r],
                    model_state=ensemble.member_state(r),
                    optim_state=_member_optim_state(optimizer, r),
                    rng_state=_rng_state(cpu_states[r], noise[r], loaders_rng[r], device),
                    data=data_record,
                    extra={"device": device.type, "ensemble": names},
                    target_epochs=epochs,
                ),
            )
    epoch_bar.close()
    trained = []
    for r, seed in enumerate(seeds):
        vae = ensemble.member(r)
        vae.history_ = histories[r]
        vae.seed_ = seed
        vae.checkpoint_path_ = paths[r]
        trained.append(vae.eval())
    return trained


def _validate(ensemble: VAEEnsemble, x: torch.Tensor) -> None:
    """One loss evaluation with Pyro's validation on (zero noise: no RNG is touched)."""
    noise = x.new_zeros(*x.shape[:2], ensemble.config.latent_dim)
    with pyro.validation_enabled(True), torch.no_grad(), warnings.catch_warnings():
        losses = ensemble.losses(x, noise)
    if not bool(torch.isfinite(losses).all()):
        raise FloatingPointError(
            f"the initial losses are {losses.tolist()}; the data or config is bad"
        )
