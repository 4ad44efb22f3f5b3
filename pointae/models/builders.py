"""``build_model(repr, task, n_loci, ...)``: one entry point for every representation x task."""

from __future__ import annotations

from torch import nn

from pointae import registry
from pointae.errors import PointaeError
from pointae.models.autoencoder import AutoEncoder
from pointae.models.registry import _construct, build_decoder, build_encoder

#: task names (live, from :data:`pointae.registry.tasks`)
TASKS = registry.tasks.where()
#: tasks whose map-decoder models are the skip-path task models (the others are autoencoders)
SKIP_TASKS = registry.tasks.where(skip_model=True)


def _split_hparams(hp: dict) -> tuple[dict, dict]:
    enc = {k: v for k, v in hp.items() if not k.startswith("decoder_")}
    dec = {k[len("decoder_") :]: v for k, v in hp.items() if k.startswith("decoder_")}
    return enc, dec


def repr_hparams(rep) -> dict:
    """Input sizes a representation object dictates (``in_channels``, ``node_features``, ...)."""
    keys = ("in_channels", "node_features", "edge_features")
    return {k: getattr(rep, k) for k in keys if hasattr(rep, k)}


def build_model(
    encoder: str,
    task: str,
    n_loci: int,
    latent_dim: int = 16,
    decoder: str | None = "map",
    rep=None,
    **hparams,
) -> nn.Module:
    """Build the model for one encoder and task.

    Parameters
    ----------
    encoder
        Encoder name: ``"map"``, ``"graph"``, ``"voxel"`` or any name of
        :data:`pointae.registry.encoders` (the built-in encoders are named after the
        representation they read).
    task
        ``"autoencode"``, ``"denoise"``, ``"inpaint"`` or ``"contrast"`` (an autoencoder), or any
        name of :data:`pointae.registry.tasks`.
    n_loci
        L.
    latent_dim
        d, the size of ``AEOutput.latent``.
    decoder
        ``"map"`` (MapDecoder), ``"coord"`` (CoordDecoder) or any registered decoder; ``None``:
        the encoder's default decoder.
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
    other encoders use the autoencoder unless :data:`pointae.registry.task_models` has an entry
    under their name. Every recon is valid by construction.

    Returns
    -------
    nn.Module
        ``forward(x) -> AEOutput(latent (B, d), recon (B, L, L))`` with ``x`` the output of
        ``build_repr(model.repr_name)``.
    """
    registry.tasks.check(task)
    registry.encoders.check(encoder)
    if decoder is None:
        decoder = registry.encoders.meta(encoder).get("decoder", "map")
    arch = hparams.pop("arch", "auto")
    if arch not in ("auto", "autoencoder"):
        raise PointaeError(f"unknown arch {arch!r}; expected 'auto' or 'autoencoder'")
    enc_hp, dec_hp = _split_hparams(hparams)
    if rep is not None:
        enc_hp = {**repr_hparams(rep), **enc_hp}
    if uses_task_model(encoder, task, decoder, arch):
        cls = registry.task_models.get(encoder)
        if dec_hp:
            raise PointaeError(
                f"{cls.__name__} has no separate decoder; got {', '.join('decoder_' + k for k in dec_hp)}"
            )
        model = _construct("task model", cls, n_loci, latent_dim, enc_hp)
        model.repr_name = cls.repr
        return model
    enc = build_encoder(encoder, n_loci, latent_dim, **enc_hp)
    return AutoEncoder(enc, build_decoder(decoder, n_loci, latent_dim, **dec_hp))


def uses_task_model(encoder: str, task: str, decoder: str | None = "map", arch: str = "auto") -> bool:
    """Whether :func:`build_model` builds the skip-path task model (else an autoencoder)."""
    return (
        registry.tasks.meta(task).get("skip_model", False)
        and decoder == "map"
        and arch == "auto"
        and encoder in registry.task_models
    )


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
