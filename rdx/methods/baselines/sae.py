"""Sparse-autoencoder baselines: an L1 SAE, a top-k SAE (per model) and a universal SAE (both models).

All three share one plain PyTorch training loop (:func:`train_autoencoder`: Adam, shuffled minibatches,
decoder atoms renormalised to unit length after every step) and one preprocessing step: each model's
features are standardised per feature with the mean and standard deviation of the fitted set. The
concepts' activations are the codes of those same standardised inputs (the public reference encodes the
raw inputs after training on standardised ones; that mismatch is deliberately not reproduced).

Seeding uses a local ``torch.Generator`` (parameter initialisation and batch order), so a fit never
touches torch's global random state and is deterministic on CPU for a fixed ``random_state``.

Defaults: batches of 4096 rows, i.e. full-batch Adam for the usual N <= 4096 (on a small CPU a few hundred
full-batch steps are much faster than thousands of tiny ones, and converge as well), and one torch CPU
thread while training (``cpu_threads``, see :func:`limited_cpu_threads`; ``None`` keeps torch's setting).
Measured with the defaults on 64-d MNIST ConvNet features (N = 1500, k = 3, both models, 2-core CPU
shared with other jobs): SAE 1.2 s, top-k SAE 2.6 s, USAE (512 latents, top-32) 17.5 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from rdx.devices import resolve_device
from rdx.methods.baselines.base import (
    Baseline,
    PerModelBaseline,
    check_n_concepts,
    concepts_from_activations,
)
from rdx.methods.checks import NotApplicableError, check_positive_number
from rdx.methods.explanation import SIDES, Concept, Explanation
from rdx.methods.rdx import check_representations

__all__ = [
    "SAEBaseline",
    "TopKSAEBaseline",
    "UniversalSAEBaseline",
    "SparseAutoencoder",
    "UniversalSparseAutoencoder",
    "FittedAutoencoder",
    "standardise",
    "train_autoencoder",
    "dead_latents",
    "limited_cpu_threads",
    "firing_entropy_across_models",
    "firing_entropy_over_images",
]

ENCODE_ROWS = 8192  # rows encoded at once after training: bounds the (rows x latents) buffer
FIRING_ENTROPIES = ("models", "images")


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature standardisation of X (N, d): returns (Z, mean, scale), Z = (X - mean) / scale.

    ``scale`` is the population standard deviation (ddof=0) with zeros replaced by 1, so a constant
    feature becomes 0 instead of NaN. Always returns new float64 arrays; X is never modified.
    """
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return (X - mean) / scale, mean, scale


def _as_tensor(Z: np.ndarray, device: torch.device) -> torch.Tensor:
    # copy: torch.from_numpy shares memory, and the caller's arrays (read-only views) must stay untouched
    return torch.from_numpy(np.array(Z, dtype=np.float32, copy=True)).to(device)


class SparseAutoencoder(nn.Module):
    """One-layer sparse autoencoder: codes = act(x W_enc + b_enc), reconstruction = codes W_dec + b_dec.

    ``atoms`` (W_dec, shape (n_latents, n_features)) are the dictionary atoms; their rows are kept at unit
    norm (:meth:`normalise_atoms`), so the L1 penalty cannot be dodged by shrinking codes and growing
    atoms. ``act`` is ReLU, or with ``top_k`` ReLU of the k largest pre-activations (the rest set to 0).
    Initialisation: random unit atoms, encoder = atoms transposed, zero biases (fewer dead latents).
    """

    def __init__(
        self,
        n_features: int,
        n_latents: int,
        top_k: int | None = None,
        l1_coefficient: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        atoms = torch.randn(n_latents, n_features, generator=generator)
        atoms /= atoms.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.atoms = nn.Parameter(atoms)
        self.decoder_bias = nn.Parameter(torch.zeros(n_features))
        self.encoder_weight = nn.Parameter(atoms.T.clone())
        self.encoder_bias = nn.Parameter(torch.zeros(n_latents))
        self.top_k = top_k
        self.l1_coefficient = float(l1_coefficient)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (n, n_latents), non-negative, for standardised inputs x (n, n_features)."""
        pre = x @ self.encoder_weight + self.encoder_bias
        if self.top_k is None:
            return F.relu(pre)
        values, indices = pre.topk(self.top_k, dim=1)
        return torch.zeros_like(pre).scatter(1, indices, F.relu(values))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstructions (n, n_features) of codes (n, n_latents)."""
        return codes @ self.atoms + self.decoder_bias

    def training_loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        """Mean squared reconstruction error per entry + l1_coefficient * mean (over rows) L1 of the codes."""
        (x,) = batch
        codes = self.encode(x)
        loss = F.mse_loss(self.decode(codes), x)
        if self.l1_coefficient > 0:
            loss = loss + self.l1_coefficient * codes.abs().sum(dim=1).mean()
        return loss

    @torch.no_grad()
    def normalise_atoms(self) -> None:
        self.atoms /= self.atoms.norm(dim=1, keepdim=True).clamp_min(1e-12)


class UniversalSparseAutoencoder(nn.Module):
    """A universal SAE (Thasarathan et al., 2025): one top-k autoencoder per model, one shared latent space.

    Model m's encoder maps its standardised features into the shared ``n_latents`` codes; every model's
    decoder reconstructs its own features from those codes. The training loss encodes each model's batch
    with that model's encoder and sums the reconstruction errors of all decoders (self and cross), so a
    latent must mean the same thing to every model.
    """

    def __init__(
        self,
        n_features: list[int],
        n_latents: int,
        top_k: int,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.autoencoders = nn.ModuleList(
            SparseAutoencoder(d, n_latents, top_k=top_k, generator=generator) for d in n_features
        )

    def encode(self, x: torch.Tensor, model: int) -> torch.Tensor:
        """Shared codes (n, n_latents) of model ``model``'s standardised features x (n, d_model)."""
        return self.autoencoders[model].encode(x)

    def decode(self, codes: torch.Tensor, model: int) -> torch.Tensor:
        """Model ``model``'s features (n, d_model) reconstructed from shared codes."""
        return self.autoencoders[model].decode(codes)

    def reconstruction_errors(self, batch: list[torch.Tensor]) -> torch.Tensor:
        """(M, M) mean squared errors: entry [m, m2] = decode with m2 what model m's encoder coded."""
        errors = []
        for m, x in enumerate(batch):
            codes = self.encode(x, m)
            row = [F.mse_loss(self.decode(codes, m2), x2) for m2, x2 in enumerate(batch)]
            errors.append(torch.stack(row))
        return torch.stack(errors)

    def training_loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        return self.reconstruction_errors(batch).sum()

    @torch.no_grad()
    def normalise_atoms(self) -> None:
        for autoencoder in self.autoencoders:
            autoencoder.normalise_atoms()


def train_autoencoder(
    module: SparseAutoencoder | UniversalSparseAutoencoder,
    inputs: list[torch.Tensor],
    epochs: int,
    batch_size: int | None,
    learning_rate: float,
    generator: torch.Generator,
    progress: bool = True,
    description: str = "sae",
) -> list[float]:
    """Adam on ``module.training_loss`` over shuffled minibatches; atoms renormalised after every step.

    Args:
        module: has ``training_loss(batch) -> scalar`` and ``normalise_atoms()``; already on the device.
        inputs: tensors with the same N rows (one per model), on the module's device; a batch takes the
            same rows of each.
        batch_size: rows per step; None or >= N trains full-batch.
        generator: CPU generator drawing the batch order (seeded by the caller).

    Returns:
        The mean training loss of each epoch (length ``epochs``).
    """
    n = inputs[0].shape[0]
    batch_size = n if batch_size is None else min(int(batch_size), n)
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    history = []
    module.train()
    bar = tqdm(range(epochs), desc=description, disable=not progress, unit="epoch", leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=generator).to(inputs[0].device)
        total = 0.0
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            loss = module.training_loss([x[rows] for x in inputs])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            module.normalise_atoms()
            total += float(loss.detach()) * len(rows)
        history.append(total / n)
        bar.set_postfix(loss=f"{history[-1]:.4f}", refresh=False)
    module.eval()
    return history


@contextmanager
def limited_cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, restoring the previous count afterwards.

    No-op on a GPU or with ``threads=None``. Why: these autoencoders are small, so torch's intra-op threads
    cost more in synchronisation than they save, and on a busy CPU every op can wait for a descheduled
    thread (all three baselines, N = 1500, d = 64, on a loaded 2-core machine: 27 s with one thread,
    490 s with two).
    """
    if device.type != "cpu" or threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def _encode_all(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> np.ndarray:
    """``encode`` applied to all rows of x in blocks; float64 numpy (N, n_latents)."""
    blocks = [encode(x[start : start + ENCODE_ROWS]).cpu() for start in range(0, x.shape[0], ENCODE_ROWS)]
    return torch.cat(blocks).numpy().astype(np.float64)


def dead_latents(codes: np.ndarray) -> np.ndarray:
    """Boolean (n_latents,): latents that are zero on every image of codes (N, n_latents)."""
    return ~(np.asarray(codes) > 0).any(axis=0)


@dataclass
class FittedAutoencoder:
    """What a per-model SAE fit keeps for one side.

    Attributes:
        autoencoder: the trained model, on the CPU, in eval mode.
        mean, scale: (d,) standardisation of the fitted features (see :func:`standardise`).
        activations: (N, n_latents) codes of the standardised fitted features.
        losses: mean training loss per epoch.
    """

    autoencoder: SparseAutoencoder
    mean: np.ndarray
    scale: np.ndarray
    activations: np.ndarray
    losses: list[float] = field(default_factory=list)

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes (n, n_latents) of features X (n, d), standardised with the fitted mean and scale."""
        Z = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        return _encode_all(self.autoencoder.encode, _as_tensor(Z, torch.device("cpu")))


@dataclass(repr=False, eq=False, kw_only=True)
class AutoencoderTraining:
    """The training parameters of every SAE baseline (fields mixed into their estimators).

    Args:
        epochs: passes over the images.
        batch_size: rows per Adam step; None trains full-batch.
        learning_rate: Adam's step size.
        device: "auto", "cpu" or "cuda" for training and encoding.
        progress: show a progress bar over the epochs.
        cpu_threads: torch CPU threads while training (see :func:`limited_cpu_threads`); None keeps
            torch's setting.
    """

    epochs: int = 300
    batch_size: int | None = 4096
    learning_rate: float = 1e-2
    device: str = "auto"
    progress: bool = True
    cpu_threads: int | None = 1

    def _check_training_params(self) -> None:
        if not isinstance(self.epochs, int | np.integer) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size is not None and (
            not isinstance(self.batch_size, int | np.integer) or self.batch_size < 1
        ):
            raise ValueError(
                f"batch_size must be a positive integer or None (full batch), got {self.batch_size!r}"
            )
        check_positive_number("learning_rate", self.learning_rate)
        if self.cpu_threads is not None and (
            not isinstance(self.cpu_threads, int | np.integer) or self.cpu_threads < 1
        ):
            raise ValueError(f"cpu_threads must be a positive integer or None, got {self.cpu_threads!r}")

    def _train(
        self,
        module: SparseAutoencoder | UniversalSparseAutoencoder,
        inputs: list[torch.Tensor],
        generator: torch.Generator,
    ) -> list[float]:
        """:func:`train_autoencoder` with these parameters; the mean loss of each epoch."""
        return train_autoencoder(
            module,
            inputs,
            self.epochs,
            self.batch_size,
            self.learning_rate,
            generator,
            self.progress,
            self.name,
        )


@dataclass(repr=False, eq=False, kw_only=True)
class _PerModelAutoencoderBaseline(AutoencoderTraining, PerModelBaseline):
    """Shared fit of the per-model SAEs: standardise, train, encode the same standardised inputs.

    Subclasses define ``_autoencoder(n_features, generator)``, ``_latents(codes)`` (which columns become
    concepts) and ``_check_params()``. After ``fit``, ``fitted_`` maps each side to a
    :class:`FittedAutoencoder`.
    """

    reuse_fits = False  # each fit appends its autoencoder to _fits

    def _autoencoder(self, n_features: int, generator: torch.Generator) -> SparseAutoencoder:
        raise NotImplementedError

    def _latents(self, codes: np.ndarray) -> list[int]:
        raise NotImplementedError

    def _check_params(self) -> None:
        self._check_training_params()

    def check_params(self) -> None:
        super().check_params()
        self._check_params()

    def validate(self, X: np.ndarray) -> None:
        self._check_params()

    def fit(
        self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None
    ) -> _PerModelAutoencoderBaseline:
        self._fits: list[FittedAutoencoder] = []  # concepts_for runs once per side, A then B
        super().fit(X_A, X_B, y)
        self.fitted_ = dict(zip(SIDES, self._fits, strict=True))
        del self._fits
        return self

    def concepts_for(self, X: np.ndarray) -> tuple[list[Concept], dict[str, Any]]:
        device = resolve_device(self.device)
        Z, mean, scale = standardise(X)
        generator = torch.Generator().manual_seed(int(self.random_state))
        autoencoder = self._autoencoder(Z.shape[1], generator).to(device)
        inputs = _as_tensor(Z, device)
        with limited_cpu_threads(device, self.cpu_threads):
            losses = self._train(autoencoder, [inputs], generator)
            codes = _encode_all(autoencoder.encode, inputs)
            with torch.no_grad():
                mse = float(F.mse_loss(autoencoder.decode(autoencoder.encode(inputs)), inputs))
        self._fits.append(FittedAutoencoder(autoencoder.cpu(), mean, scale, codes, losses))
        latents = self._latents(codes)
        concepts = concepts_from_activations(codes, self.grid_size, columns=latents)
        info = {
            "n_latents": codes.shape[1],
            "latents": latents,
            "reconstruction_mse": mse,
            "final_loss": losses[-1],
            "dead_fraction": float(dead_latents(codes).mean()),
            "device": str(device),
        }
        return concepts, info


@dataclass(repr=False, eq=False, kw_only=True)
class SAEBaseline(_PerModelAutoencoderBaseline):
    """L1 sparse autoencoder with k = n_concepts latents per model; each latent is one concept.

    Loss: mean squared reconstruction error (per entry, of the standardised features) plus
    ``l1_coefficient`` times the mean over images of the codes' L1 norm; ReLU codes; unit-norm atoms.
    Grids: the 9 images with the highest activation of the latent (codes of the standardised inputs).

    Default ``l1_coefficient=0.01``: per image, the reconstruction term pulls a code with
    (2/d) * atom . residual and the penalty pushes it down with l1_coefficient, so a code survives only
    where its atom explains more than l1_coefficient * d / 2 = 0.32 standard deviations of the residual
    (d = 64). Weak, incidental activations become exact zeros while each latent keeps firing on the images
    its direction describes. Measured on 64-d MNIST ConvNet features (digits 3/5/8, N = 1500, k = 3):
    0 and 0.001 leave ~30 % of codes at zero (ReLU alone), 0.01 ~40-45 % at the same reconstruction
    error and no dead latents, 0.03 costs reconstruction, 0.1 kills latents.
    """

    name = "sae"
    needs_features = True  # k latents <= d: an undercomplete dictionary, as in the paper's table

    l1_coefficient: float = 0.01

    def _check_params(self) -> None:
        super()._check_params()
        if not self.l1_coefficient >= 0:
            raise ValueError(f"l1_coefficient must be >= 0, got {self.l1_coefficient!r}")

    def _autoencoder(self, n_features: int, generator: torch.Generator) -> SparseAutoencoder:
        return SparseAutoencoder(
            n_features, self.n_concepts, l1_coefficient=self.l1_coefficient, generator=generator
        )

    def _latents(self, codes: np.ndarray) -> list[int]:
        return list(range(codes.shape[1]))


@dataclass(repr=False, eq=False, kw_only=True)
class TopKSAEBaseline(_PerModelAutoencoderBaseline):
    """Top-k sparse autoencoder with ``n_latents`` (50) latents per model; k concepts kept.

    Each image keeps its ``top_k`` largest pre-activations (ReLU'd), all others are 0; the loss is the
    mean squared reconstruction error only (sparsity is enforced by top-k, no L1). ``top_k`` defaults to
    n_concepts (the table's "top-k active" with k the number of concepts). The concepts are the
    n_concepts latents with the largest mean activation over the fitted images, strongest first (ties by
    latent index); grids: their 9 highest activations. Members: images whose largest activation among
    the kept latents is that latent.
    """

    name = "topk_sae"
    needs_features = False  # the dictionary may be overcomplete: k <= n_latents is what matters

    n_latents: int = 50
    top_k: int | None = None

    @property
    def active(self) -> int:
        """Latents active per image: ``top_k``, or n_concepts when top_k is None."""
        return self.n_concepts if self.top_k is None else self.top_k

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.n_latents, int | np.integer) or self.n_latents < self.n_concepts:
            raise ValueError(
                f"n_latents must be an integer >= n_concepts={self.n_concepts}, got {self.n_latents!r}"
            )
        if not isinstance(self.active, int | np.integer) or not 1 <= self.active <= self.n_latents:
            raise ValueError(
                f"top_k must be an integer in [1, n_latents={self.n_latents}] or None, got {self.top_k!r}"
            )

    def _autoencoder(self, n_features: int, generator: torch.Generator) -> SparseAutoencoder:
        return SparseAutoencoder(n_features, self.n_latents, top_k=int(self.active), generator=generator)

    def _latents(self, codes: np.ndarray) -> list[int]:
        mean_activation = codes.mean(axis=0)
        order = np.lexsort((np.arange(len(mean_activation)), -mean_activation))
        return [int(j) for j in order[: self.n_concepts]]


def firing_entropy_across_models(codes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The USAE paper's firing entropy of each latent across M models.

    Args:
        codes: per model, its (N, n_latents) codes of the same N images.

    Returns:
        entropy: (n_latents,) in [0, 1]: -sum_m p_m log p_m / log M, where p_m is the share of the
            latent's firings (images with a positive code) that come from model m. 0: the latent fires for
            one model only (model-specific); 1: equally often for all (universal). Dead latents get NaN.
        firings: (M, n_latents) number of images on which each model fires each latent.
    """
    firings = np.stack([(np.asarray(c) > 0).sum(axis=0) for c in codes]).astype(np.float64)
    total = firings.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = firings / total
        terms = np.where(shares > 0, -shares * np.log(np.where(shares > 0, shares, 1.0)), 0.0)
    entropy = terms.sum(axis=0) / np.log(len(codes))
    entropy[total == 0] = np.nan
    return entropy, firings.astype(np.int64)


def firing_entropy_over_images(codes: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each latent's activation distribution over images, from one model's codes.

    For codes (N, n_latents) >= 0, p_i = codes[i, j] / sum_i codes[i, j] and H_j = -sum_i p_i log p_i:
    0 when the latent fires on a single image, log N when equally on all. Dead latents get NaN.
    """
    codes = np.asarray(codes, dtype=np.float64)
    total = codes.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = codes / total
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = terms.sum(axis=0)
    entropy[total == 0] = np.nan
    return entropy


@dataclass(repr=False, eq=False, kw_only=True)
class UniversalSAEBaseline(AutoencoderTraining, Baseline):
    """Universal SAE shared by both models; per model the k latents with the lowest firing entropy.

    One :class:`UniversalSparseAutoencoder` with ``expansion`` * max(d_A, d_B) shared latents and
    ``top_k`` (32) active per image is trained on both models' standardised features at once. Each side's
    concepts are latents chosen from that model's codes (of its standardised features), and their grids
    are the 9 images with the highest activation in that model's codes.

    Firing entropy (``firing_entropy``):
        "models" (default, the USAE paper's definition): how evenly a latent's firings (images with a
            positive code) split between the two models, normalised to [0, 1]; see
            :func:`firing_entropy_across_models`. Low = model-specific, which is what a difference
            explanation wants. Side m ranks the latents that fire at least as often for m as for the
            other model.
        "images": entropy of the latent's normalised activation distribution over the images, from model
            m's codes (:func:`firing_entropy_over_images`). Low = concentrated on few images.
    Ranking for side m, over the latents that fire on at least one of m's images (dead ones are
    excluded): for "models", latents that fire more often for the other model come last; then those
    firing on fewer than ``grid_size`` of m's images (their grid would show non-firing images); then by
    ascending entropy; ties by more firings for m, then by latent index. Raises if m has fewer than
    n_concepts live latents.
    """

    name = "usae"

    expansion: int = 8
    top_k: int = 32
    firing_entropy: str = "models"
    learning_rate: float = 5e-3

    def check_params(self) -> None:
        super().check_params()
        self._check_training_params()
        if not isinstance(self.expansion, int | np.integer) or self.expansion < 1:
            raise ValueError(f"expansion must be a positive integer, got {self.expansion!r}")
        if not isinstance(self.top_k, int | np.integer) or self.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}")
        if self.firing_entropy not in FIRING_ENTROPIES:
            raise ValueError(f"firing_entropy must be one of {FIRING_ENTROPIES}, got {self.firing_entropy!r}")

    def _check_params(self, n_latents: int) -> None:
        """The parameters, then what the widths allow: ``n_latents`` = expansion * max(d_A, d_B) must
        hold top_k and n_concepts (:class:`NotApplicableError` otherwise: narrow layers)."""
        self.check_params()
        if self.top_k > n_latents:
            raise NotApplicableError(
                f"top_k={self.top_k} is larger than its n_latents={n_latents} (expansion {self.expansion} "
                "* max(d_A, d_B)): the representations are too narrow for this dictionary; raise expansion "
                "or lower top_k"
            )
        if self.n_concepts > n_latents:
            raise NotApplicableError(
                f"n_concepts={self.n_concepts} is larger than the number of latents {n_latents}"
            )

    def _select(self, codes: list[np.ndarray], model: int) -> tuple[list[int], np.ndarray]:
        """The n_concepts latents of model ``model`` (see the class docstring) and every latent's entropy."""
        firings = np.stack([(c > 0).sum(axis=0) for c in codes])
        own = firings[model]
        if self.firing_entropy == "models":
            entropy, _ = firing_entropy_across_models(codes)
            dominated = own < firings.max(axis=0)
        else:
            entropy = firing_entropy_over_images(codes[model])
            dominated = np.zeros(len(own), dtype=bool)
        live = np.flatnonzero(own > 0)
        if len(live) < self.n_concepts:
            raise ValueError(
                f"only {len(live)} of {len(own)} latents fire on model {SIDES[model]}'s images; "
                f"lower n_concepts (={self.n_concepts}) or train longer"
            )
        keys = (live, -own[live], entropy[live], own[live] < self.grid_size, dominated[live])
        order = live[np.lexsort(keys)]
        return [int(j) for j in order[: self.n_concepts]], entropy

    def fit(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> UniversalSAEBaseline:
        self.check_params()
        X_A, X_B = check_representations(X_A, X_B, min_samples=2)
        for X in (X_A, X_B):
            check_n_concepts(self.n_concepts, X, needs_features=False)
        n_latents = int(self.expansion) * max(X_A.shape[1], X_B.shape[1])
        self._check_params(n_latents)

        device = resolve_device(self.device)
        standardised = [standardise(X) for X in (X_A, X_B)]
        inputs = [_as_tensor(Z, device) for Z, _, _ in standardised]
        generator = torch.Generator().manual_seed(int(self.random_state))
        usae = UniversalSparseAutoencoder(
            [x.shape[1] for x in inputs], n_latents, int(self.top_k), generator=generator
        ).to(device)
        with limited_cpu_threads(device, self.cpu_threads):
            losses = self._train(usae, inputs, generator)
            codes = [_encode_all(lambda x, m=m: usae.encode(x, m), inputs[m]) for m in range(len(inputs))]
            with torch.no_grad():
                errors = usae.reconstruction_errors(inputs).cpu().numpy()

        concepts: dict[str, list[Concept]] = {}
        info: dict[str, Any] = {
            "n_concepts": self.n_concepts,
            "random_state": self.random_state,
            "n_latents": n_latents,
            "top_k": int(self.top_k),
            "firing_entropy": self.firing_entropy,
            "final_loss": losses[-1],
            "device": str(device),
        }
        for model, side in enumerate(SIDES):
            latents, entropy = self._select(codes, model)
            concepts[side] = concepts_from_activations(codes[model], self.grid_size, columns=latents)
            info[side] = {
                "latents": latents,
                "entropies": [float(entropy[j]) for j in latents],
                "reconstruction_mse": float(errors[model, model]),
                "cross_reconstruction_mse": float(errors[model, 1 - model]),
                "dead_fraction": float(dead_latents(codes[model]).mean()),
            }
        self.autoencoder_ = usae.cpu()
        self.standardisation_ = {
            side: (mean, scale) for side, (_, mean, scale) in zip(SIDES, standardised, strict=True)
        }
        self.activations_ = dict(zip(SIDES, codes, strict=True))
        self.losses_ = losses
        self.explanation_ = Explanation(self.name, concepts, info=info)
        return self
