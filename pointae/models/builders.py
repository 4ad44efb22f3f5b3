"""``build_model(repr, task, n_loci, ...)``: one entry point for every representation x task."""

from __future__ import annotations

from torch import nn

from pointae.errors import PointaeError
from pointae.models.autoencoder import AutoEncoder
from pointae.models.registry import ENCODERS, _construct, _load_builtins, build_decoder, build_encoder
from pointae.models.task_models import TASK_MODELS

TASKS = ("autoencode", "denoise", "inpaint", "contrast")
#: tasks whose map-decoder models are the skip-path task models (the others are autoencoders)
SKIP_TASKS = ("denoise", "inpaint")


def _split_hparams(hp: dict) -> tuple[dict, dict]:
    enc = {k: v for k, v in hp.items() if not k.startswith("decoder_")}
    dec = {k[len("decoder_") :]: v for k, v in hp.items() if k.startswith("decoder_")}
    return enc, dec


def repr_hparams(rep) -> dict:
    """Input sizes a representation object dictates (``in_channels``, ``node_features``, ...)."""
    keys = ("in_channels", "node_features", "edge_features")
    return {k: getattr(rep, k) for k in keys if hasattr(rep, k)}


def build_model(
    repr: str,
    task: str,
    n_loci: int,
    latent_dim: int = 16,
    decoder: str = "map",
    rep=None,
    **hparams,
) -> nn.Module:
    """Build the model for one representation and task.

    Parameters
    ----------
    repr
        Encoder name: ``"map"``, ``"graph"``, ``"voxel"`` or any registered encoder.
    task
        ``"autoencode"``, ``"denoise"``, ``"inpaint"`` or ``"contrast"`` (an autoencoder).
    n_loci
        L.
    latent_dim
        d, the size of ``AEOutput.latent``.
    decoder
        ``"map"`` (MapDecoder) or ``"coord"`` (CoordDecoder).
    rep
        Optional representation object (from ``build_repr``); its input sizes
        (``in_channels`` / ``node_features`` / ``edge_features``) are passed to the encoder, so
        non-default representation options just work.
    **hparams
        Encoder hyperparameters (e.g. ``widths=(8, 8, 8, 8)``); keys prefixed ``decoder_`` go to
        the decoder with the prefix removed (``decoder_widths=(...)``). ``arch="autoencoder"``
        forces the plain encoder -> latent -> decoder model for denoise/inpaint too.

    Notes
    -----
    For ``denoise``/``inpaint`` with the map decoder, ``"map"`` builds a
    :class:`~pointae.models.task_models.MapUNet` and ``"graph"`` a
    :class:`~pointae.models.task_models.GraphPairNet` and ``"voxel"`` a
    :class:`~pointae.models.task_models.VoxelSkipNet` (skip paths; hyperparameters are theirs);
    other encoders use the autoencoder. Every recon is valid by construction.

    Returns
    -------
    nn.Module
        ``forward(x) -> AEOutput(latent (B, d), recon (B, L, L))`` with ``x`` the output of
        ``build_repr(model.repr_name)``.
    """
    _load_builtins()
    if task not in TASKS:
        raise PointaeError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if repr not in ENCODERS:
        raise PointaeError(
            f"unknown representation/encoder {repr!r}; registered: {', '.join(sorted(ENCODERS))}"
        )
    arch = hparams.pop("arch", "auto")
    if arch not in ("auto", "autoencoder"):
        raise PointaeError(f"unknown arch {arch!r}; expected 'auto' or 'autoencoder'")
    enc_hp, dec_hp = _split_hparams(hparams)
    if rep is not None:
        enc_hp = {**repr_hparams(rep), **enc_hp}
    if task in SKIP_TASKS and decoder == "map" and arch == "auto" and repr in TASK_MODELS:
        if dec_hp:
            raise PointaeError(
                f"{TASK_MODELS[repr].__name__} has no separate decoder; "
                f"got {', '.join('decoder_' + k for k in dec_hp)}"
            )
        model = _construct("task model", TASK_MODELS[repr], n_loci, latent_dim, enc_hp)
        model.repr_name = repr
        return model
    encoder = build_encoder(repr, n_loci, latent_dim, **enc_hp)
    return AutoEncoder(encoder, build_decoder(decoder, n_loci, latent_dim, **dec_hp))


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
