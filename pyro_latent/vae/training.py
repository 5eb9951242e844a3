"""Training a :class:`~pyro_latent.vae.model.VAE` with Pyro SVI, and its checkpoints.

Training follows Pyro's documented custom-objective pattern: the model and guide stay Pyro
programs, ``TraceMeanField_ELBO().differentiable_loss(model, guide, x_B)`` turns them into a
differentiable loss, and one ``torch.optim.Adam`` (``foreach``) steps every parameter of the VAE.
Each step uses the single-sample estimate with the KL term in closed form,

    ELBO_B = Σ_{n∈B} [log p_θ(x_n | z_n) - KL(q_φ(z | x_n) ‖ N(0, I))],   z_n ~ q_φ(· | x_n),

an unbiased estimate of ``Σ_{n∈B} ELBO(x_n)`` with less variance than the sampled KL of
``Trace_ELBO``.  Pyro's validation is switched off inside the training loop only (it checks
every sample site's support on every step); the programs are validated once, on the first
minibatch, before the loop starts.  The history records ``-Σ_B loss_B / N`` for each epoch: the
training ELBO in nats per image, averaged over the epoch.

Determinism.  ``pyro.set_rng_seed(seed)`` seeds the draws of ``z``; a separate
``torch.Generator`` seeded with ``seed`` shuffles the minibatches.  Same seed, data, device and
thread count give identical loss curves.

Checkpoints.  After every epoch ``runs/<name>-<seed>/checkpoint.pt`` is rewritten atomically
(a temporary file in the same folder, fsync, then ``os.replace``), so a kill at any moment leaves
the previous complete checkpoint.  It holds the format and version, the config, the seed, the
fingerprint of the training data, the epoch, the loss history, the weights, the state of Pyro's
per-parameter Adam optimisers (``PyroOptim.get_state()``), the torch RNG states (global and the
shuffling generator) and a SHA-256 digest of all of that.  It contains only tensors and plain
Python values and is read with ``torch.load(weights_only=True)``.  Resuming restores every piece,
so ``1 epoch + resume 1 epoch`` ends with the same weights and ELBO as 2 epochs in one go.

A checkpoint that cannot be read, whose digest does not match, whose version is not
:data:`CHECKPOINT_VERSION`, or whose config, seed or data differ from the run asked for, raises
:class:`CheckpointError` (:class:`CheckpointMismatchError` for the last kind) before anything is
written; so do weights, optimiser or RNG states that cannot be restored on ``resume``.

Unfinished runs.  Checkpoints also store ``target_epochs``, the number of epochs the run was
asked for.  :func:`load_vae` emits an :class:`UnfinishedRunWarning` (and still returns the VAE,
so a partly trained model can be inspected) when ``epoch < target_epochs``; turn it into an
error with ``warnings.simplefilter("error", UnfinishedRunWarning)``.  Checkpoints written before
the field existed carry no target and are treated as finished.

Temporary files that a killed writer left behind (``.checkpoint.pt.*.tmp``) are removed when
:func:`train_vae` starts on that run folder.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pyro
import torch
from tqdm.auto import tqdm

from pyro_latent.core.checks import check_nonnegative_int, check_positive_int
from pyro_latent.core.files import write_atomically
from pyro_latent.vae.data import ImageData, image_fingerprint
from pyro_latent.vae.mixture import build_vae
from pyro_latent.vae.model import VAE, VAEConfig, get_preset

CHECKPOINT_FORMAT = "pyro-latent/vae-checkpoint"
CHECKPOINT_VERSION = 2  # 2: one torch Adam state_dict (1: Pyro per-parameter Adams)
CHECKPOINT_NAME = "checkpoint.pt"
DEFAULT_RUNS_DIR = Path("runs")


class CheckpointError(RuntimeError):
    """A checkpoint is unreadable, tampered with, of another format version, or does not match."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint of a different run (config, seed, training data or epochs)."""


class UnfinishedRunWarning(UserWarning):
    """:func:`load_vae` was given the checkpoint of a run that stopped before its target epochs."""


@dataclass
class Checkpoint:
    """The contents of a checkpoint file, as read by :func:`read_checkpoint`."""

    config: VAEConfig
    seed: int
    epoch: int
    history: list[float]
    model_state: dict
    optim_state: dict
    rng_state: dict
    data: dict
    path: Path | None = None
    extra: dict = field(default_factory=dict)
    target_epochs: int | None = None
    """Epochs the run was asked for; ``None`` in checkpoints written before this field."""

    @property
    def finished(self) -> bool:
        return self.target_epochs is None or self.epoch >= self.target_epochs


# --- devices and paths ----------------------------------------------------------------------


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``cpu`` (default) or ``cuda`` (``cuda:<index>``); a device string torch does not know
    (``"gpu"``), any other device type, and CUDA without a GPU (or without that GPU) are a
    :class:`ValueError` naming the device."""
    try:
        resolved = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device must be 'cpu' or 'cuda' (or 'cuda:<index>'); got {device!r}"
        ) from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {str(device)!r}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r} was asked for, but torch.cuda.is_available() is False"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} was asked for, but there are only "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return resolved


def run_dir(config: VAEConfig, seed: int, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Path:
    """``runs_dir/<name>-<seed>``: the folder of one training run."""
    return Path(runs_dir) / f"{config.name}-{seed}"


def checkpoint_path(
    config: VAEConfig, seed: int, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR
) -> Path:
    return run_dir(config, seed, runs_dir) / CHECKPOINT_NAME


# --- reading and writing ----------------------------------------------------------------------


def _digest(obj, h) -> None:
    """Feed a canonical serialisation of nested dicts/lists/tensors/scalars to ``h``."""
    if isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode())
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for value in obj:
            _digest(value, h)
        h.update(b"]")
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        h.update(repr(obj).encode())


def payload_digest(payload: dict) -> str:
    """SHA-256 of everything in a checkpoint payload except its ``sha256`` entry."""
    h = hashlib.sha256()
    _digest({k: v for k, v in payload.items() if k != "sha256"}, h)
    return h.hexdigest()


def write_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": checkpoint.config.to_dict(),
        "seed": int(checkpoint.seed),
        "epoch": int(checkpoint.epoch),
        **(
            {}
            if checkpoint.target_epochs is None
            else {"target_epochs": int(checkpoint.target_epochs)}
        ),
        "history": [float(v) for v in checkpoint.history],
        "data": dict(checkpoint.data),
        "model_state": {k: v.detach().cpu() for k, v in checkpoint.model_state.items()},
        "optim_state": checkpoint.optim_state,
        "rng_state": checkpoint.rng_state,
        "extra": {
            "torch": str(torch.__version__),
            "pyro": str(pyro.__version__),
            **checkpoint.extra,
        },
    }
    payload["sha256"] = payload_digest(payload)
    return write_atomically(path, lambda f: torch.save(payload, f))


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.checkpoint.pt.*.tmp`` files a killed writer left in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(folder.glob(f".{CHECKPOINT_NAME}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and verify a checkpoint (``torch.load(weights_only=True)``, tensors on the CPU).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: unreadable, wrong format or version, or digest mismatch.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupted or not written by pyro-latent): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a pyro-latent VAE checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {payload.get('version')!r}; this version of "
            f"pyro-latent reads version {CHECKPOINT_VERSION}. Move the run folder aside (nothing "
            "is ever overwritten) and run again to retrain, or load it with the pyro-latent "
            "version that wrote it."
        )
    if payload.get("sha256") != payload_digest(payload):
        raise CheckpointError(
            f"{path} fails its SHA-256 check: the file was modified or corrupted after it was "
            "written. Delete it to retrain."
        )
    try:
        config = VAEConfig.from_dict(payload["config"])
        return Checkpoint(
            config=config,
            seed=int(payload["seed"]),
            epoch=int(payload["epoch"]),
            history=list(payload["history"]),
            model_state=payload["model_state"],
            optim_state=payload["optim_state"],
            rng_state=payload["rng_state"],
            data=payload["data"],
            path=path,
            extra=payload.get("extra", {}),
            target_epochs=(
                None if payload.get("target_epochs") is None else int(payload["target_epochs"])
            ),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has an invalid layout: {err}") from None


def _check_matches(ckpt: Checkpoint, config: VAEConfig, seed: int, data: dict, epochs: int):
    problems = []
    mine, theirs = config.to_dict(), ckpt.config.to_dict()
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            problems.append(f"{key}: checkpoint {theirs.get(key)!r}, asked {mine.get(key)!r}")
    if ckpt.seed != seed:
        problems.append(f"seed: checkpoint {ckpt.seed}, asked {seed}")
    if ckpt.data.get("fingerprint") != data["fingerprint"]:
        problems.append(
            f"training data: checkpoint {ckpt.data.get('n')} images "
            f"({str(ckpt.data.get('fingerprint'))[:10]}), asked {data['n']} "
            f"({data['fingerprint'][:10]})"
        )
    if ckpt.epoch > epochs:
        problems.append(f"epochs: checkpoint already has {ckpt.epoch}, asked {epochs}")
    if problems:
        raise CheckpointMismatchError(
            f"{ckpt.path} belongs to another run; nothing was overwritten.\n  "
            + "\n  ".join(problems)
            + "\nUse another runs directory, or delete the checkpoint to retrain."
        )


def _build_vae(ckpt: Checkpoint, device: torch.device) -> VAE:
    if not ckpt.finished:
        warnings.warn(
            f"{ckpt.path} is an unfinished run: {ckpt.epoch} of its {ckpt.target_epochs} "
            "epochs. Finish it with train_vae(..., resume=True) (`pyro-latent train ... "
            "--resume`); loading the partly trained weights anyway.",
            UnfinishedRunWarning,
            stacklevel=3,
        )
    vae = build_vae(ckpt.config)
    try:
        vae.load_state_dict(ckpt.model_state)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt.path}: weights do not fit the config: {err}") from None
    vae.history_ = list(ckpt.history)
    vae.seed_ = ckpt.seed
    vae.checkpoint_path_ = ckpt.path
    return vae.to(device).eval()


def load_vae(
    name_or_path: str | os.PathLike,
    *,
    seed: int = 0,
    runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR,
    device: str | torch.device | None = None,
) -> VAE:
    """A trained VAE, in eval mode, from a checkpoint file or folder, or a preset name.

    ``load_vae("small", seed=1)`` reads ``runs/small-1/checkpoint.pt`` and checks that its config
    is still the ``small`` preset; ``load_vae("small-z10")`` loads a run of the latent-size
    sweep (see :func:`~pyro_latent.vae.model.get_preset`).  The returned VAE carries
    ``history_`` (training ELBO per epoch), ``seed_`` and ``checkpoint_path_``.  A run that
    stopped before its target epochs loads with an :class:`UnfinishedRunWarning`.  An unknown or
    unavailable ``device`` (``"gpu"``, ``"cuda"`` without CUDA) is a :class:`ValueError` naming
    it (:func:`resolve_device`), raised before any file is read.
    """
    _check_seed(seed)
    device = resolve_device(device)
    path = Path(name_or_path)
    if path.suffix == ".pt" or path.is_dir() or os.sep in str(name_or_path):
        return _build_vae(read_checkpoint(path), device)
    config = get_preset(str(name_or_path))
    path = checkpoint_path(config, seed, runs_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint for preset {config.name!r} seed {seed} at {path}; train it with "
            f"`pyro-latent train --preset {config.name} --seed {seed} --runs-dir {runs_dir}`"
        )
    ckpt = read_checkpoint(path)
    if ckpt.config != config:
        raise CheckpointMismatchError(
            f"{path} was trained with {ckpt.config}, not the current preset {config}; retrain it"
        )
    return _build_vae(ckpt, device)


# --- training -------------------------------------------------------------------------------


def resolve_config(config: VAEConfig | str) -> VAEConfig:
    """``config`` itself, or the preset it names (:func:`get_preset`); anything else is a
    :class:`TypeError`."""
    config = get_preset(config) if isinstance(config, str) else config
    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig or a preset name; got {type(config).__name__}")
    return config


def _check_seed(seed) -> int:
    return check_nonnegative_int(seed, "seed")


def _as_images(data: ImageData | torch.Tensor, vae: VAE) -> torch.Tensor:
    if isinstance(data, ImageData):
        return vae.check_images(data.images).cpu()
    if isinstance(data, torch.Tensor):
        return vae.check_images(data).cpu()
    raise TypeError(f"data must be ImageData or a tensor of images; got {type(data).__name__}")


def _data_record(images: torch.Tensor) -> dict:
    return {"n": int(images.shape[0]), "fingerprint": image_fingerprint(images)}


def _rng_state(loader_generator: torch.Generator, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "loader": loader_generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, loader_generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    loader_generator.set_state(state["loader"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class ShuffledBatches:
    """Shuffled minibatches ``(x,)`` of ``images``, one permutation per epoch drawn from
    ``generator`` only (the global RNG is left to the guide's samples).

    It visits the images in exactly the order of the ``DataLoader`` the study trained with
    before (``BatchSampler(RandomSampler(dataset, generator=g), batch_size, drop_last=False)``,
    ``batch_size=None``) and leaves ``generator`` in the same state after every epoch, so older
    checkpoints resume step for step (tested against that loader).  That loader draws three
    times from ``g`` per epoch: the iterator's base seed (one ``int64``), the sampler's
    permutation ``π = randperm(n)``, and the empty tail ``randperm(n)[:0]`` when it runs out.
    Here the three draws happen at once in :meth:`epoch_order`, and a batch is one indexing
    ``images[π[k·B:(k+1)·B]]`` instead of a Python list per batch: the per-step data cost
    falls from about 7 % of a small ensemble's step to almost nothing."""

    def __init__(self, images: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.images = images
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.generator = generator

    def __len__(self) -> int:
        return -(-self.images.shape[0] // self.batch_size)

    def epoch_order(self) -> torch.Tensor:
        """The next epoch's permutation of ``0..n-1`` (on the CPU), advancing ``generator``
        as one epoch of the DataLoader does."""
        n = self.images.shape[0]
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # base seed
        order = torch.randperm(n, generator=self.generator)
        torch.randperm(n, generator=self.generator)  # the sampler's empty tail, [:0]
        return order

    def __iter__(self):
        order = self.epoch_order().to(self.images.device)
        for start in range(0, order.shape[0], self.batch_size):
            yield (self.images.index_select(0, order[start : start + self.batch_size]),)


def make_loader(
    images: torch.Tensor, batch_size: int, generator: torch.Generator
) -> ShuffledBatches:
    """Shuffled minibatches of ``images``, shuffled by ``generator`` only: see
    :class:`ShuffledBatches`."""
    return ShuffledBatches(images, batch_size, generator)


def train_vae(
    config: VAEConfig | str,
    data: ImageData | torch.Tensor,
    epochs: int,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | os.PathLike | None = DEFAULT_RUNS_DIR,
    *,
    resume: bool = False,
    progress: bool = True,
) -> VAE:
    """Train a VAE (its ``training_loss``, one Adam) for ``epochs`` epochs; return it in eval
    mode.

    Args:
        config: a :class:`VAEConfig` or a preset name.
        data: training images, :class:`ImageData` or a tensor ``(N, 784)`` in ``[0, 1]``.
        epochs: total number of epochs the run should have (not additional ones).
        seed: seeds both the guide's samples and the shuffling.
        device: ``cpu`` (default) or ``cuda``.
        checkpoint_dir: root of the run folders; the checkpoint is
            ``checkpoint_dir/<name>-<seed>/checkpoint.pt``.  ``None`` disables checkpoints.
        resume: continue from an existing checkpoint of the same run (reusing it as is when it
            already has ``epochs`` epochs).  Without it an existing checkpoint is an error: it is
            never overwritten.
        progress: show tqdm bars (epochs, and batches within an epoch) with the ELBO.

    The returned VAE carries ``history_``: the mean training ELBO (nats/image) of each epoch.
    """
    config = resolve_config(config)
    epochs = check_positive_int(epochs, "epochs")
    seed = _check_seed(seed)
    device = resolve_device(device)
    pyro.set_rng_seed(seed)  # before VAE(): the initial weights are drawn from it
    vae = build_vae(config)
    images = _as_images(data, vae)
    data_record = _data_record(images)
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.lr, foreach=True)
    loader_generator = torch.Generator().manual_seed(seed)
    history: list[float] = []
    path = None if checkpoint_dir is None else checkpoint_path(config, seed, checkpoint_dir)
    if path is not None:
        remove_stale_temporaries(path.parent)
    if path is not None and path.exists():
        if not resume:
            raise CheckpointError(
                f"{path} already exists; pass resume=True (`--resume`) to continue or reuse it, "
                "or choose another runs directory. Nothing was overwritten."
            )
        ckpt = read_checkpoint(path)
        _check_matches(ckpt, config, seed, data_record, epochs)
        try:
            vae.load_state_dict(ckpt.model_state)
            _check_optim_state(ckpt.optim_state, vae)
            optimizer.load_state_dict(ckpt.optim_state)
            _set_rng_state(ckpt.rng_state, loader_generator, device)
        except Exception as err:
            raise CheckpointError(
                f"{path} cannot be resumed: its saved state does not restore "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
                "Nothing was overwritten; delete the checkpoint to retrain."
            ) from None
        history = list(ckpt.history)
        if len(history) != ckpt.epoch:
            raise CheckpointError(
                f"{path} cannot be resumed: it records {ckpt.epoch} epochs but a history of "
                f"{len(history)}. Nothing was overwritten; delete the checkpoint to retrain."
            )

    vae.to(device).train()
    loader = make_loader(images.to(device), config.batch_size, loader_generator)
    n = images.shape[0]
    loss = vae.training_loss()
    with pyro.get_param_store().scope():
        _validate_programs(vae, loss, images[: config.batch_size].to(device))
        step = _make_step(vae, loss, optimizer)
        epoch_bar = tqdm(
            range(len(history), epochs),
            initial=len(history),
            total=epochs,
            desc=f"{config.name}-{seed}",
            unit="epoch",
            disable=not progress,
        )
        for epoch in epoch_bar:
            with pyro.validation_enabled(False):
                elbo = _train_epoch(step, loader, n, f"epoch {epoch + 1}", progress)
            history.append(elbo)
            epoch_bar.set_postfix(elbo=f"{elbo:.2f}")
            if path is not None:
                write_checkpoint(
                    path,
                    Checkpoint(
                        config=config,
                        seed=seed,
                        epoch=epoch + 1,
                        history=history,
                        model_state=vae.state_dict(),
                        optim_state=optimizer.state_dict(),
                        rng_state=_rng_state(loader_generator, device),
                        data=data_record,
                        extra={"device": device.type},
                        target_epochs=epochs,
                    ),
                )
        epoch_bar.close()
    vae.history_ = history
    vae.seed_ = seed
    vae.checkpoint_path_ = path
    return vae.eval()


def _check_optim_state(optim_state, vae: VAE) -> None:
    """Raise unless ``optim_state`` is a ``torch.optim.Adam`` state dict for the parameters of
    ``vae``: one group over all of them, moments of each parameter's shape."""
    if not isinstance(optim_state, dict) or set(optim_state) != {"state", "param_groups"}:
        raise TypeError("the optimiser state is not a torch.optim.Adam state_dict")
    params = list(vae.parameters())
    groups = optim_state["param_groups"]
    if len(groups) != 1 or list(groups[0]["params"]) != list(range(len(params))):
        raise ValueError(f"expected one parameter group over the VAE's {len(params)} parameters")
    for index, moments in optim_state["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            if key in moments and tuple(moments[key].shape) != tuple(params[index].shape):
                raise ValueError(
                    f"parameter {index}: {key} has shape {tuple(moments[key].shape)}, the "
                    f"parameter {tuple(params[index].shape)}"
                )


def _validate_programs(vae: VAE, loss, x: torch.Tensor) -> None:
    """One loss evaluation with Pyro's validation on, before the loop runs without it.  It draws
    from a forked RNG, so training (and a resumed run) sees the same random numbers as without
    it."""
    devices = [x.device] if x.device.type == "cuda" else []
    # With gradients: TraceEnum_ELBO's differentiable loss refuses a value it cannot
    # differentiate, and the graph is freed as soon as the value is read.
    with torch.random.fork_rng(devices=devices), pyro.validation_enabled(True):
        value = loss(vae.model_for_training, vae.guide_for_training, x).detach()
    if not torch.isfinite(value):
        raise FloatingPointError(f"the initial loss is {float(value)}; the data or config is bad")


def _make_step(vae: VAE, loss, optimizer: torch.optim.Optimizer):
    """One gradient step on a minibatch; returns the loss (negative ELBO, summed over it)."""

    def step(x: torch.Tensor) -> float:
        value = loss(vae.model_for_training, vae.guide_for_training, x)
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(value.detach())

    return step


def _train_epoch(step, loader: ShuffledBatches, n: int, desc: str, progress: bool) -> float:
    """One pass over the data; returns the mean training ELBO per image."""
    total, seen = 0.0, 0
    # One iterator, made here: the shuffle then draws from the loader's generator exactly once per
    # epoch, whatever the progress bar does with what it is given.
    batches = iter(loader)
    bar = tqdm(
        batches, total=len(loader), desc=desc, unit="batch", leave=False, disable=not progress
    )
    for i, (x,) in enumerate(bar):
        total += step(x)
        seen += x.shape[0]
        if progress and i % 20 == 0:
            bar.set_postfix(elbo=f"{-total / seen:.2f}")
    bar.close()
    if seen != n:
        raise RuntimeError(f"an epoch saw {seen} of {n} images")
    return -total / n
