"""``AutoEncoder(encoder, decoder)``: composes any registered encoder with any decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AEOutput:
    """What every pointae model returns.

    Attributes
    ----------
    latent
        ``(B, d)`` the embedding used for clustering.
    recon
        ``(B, L, L)`` the reconstructed distance map (scaled units), valid by construction.
    """

    latent: torch.Tensor
    recon: torch.Tensor


class AutoEncoder(nn.Module):
    """Encoder -> latent -> decoder (as PyG's ``GAE(encoder, decoder)``).

    Parameters
    ----------
    encoder
        A registered encoder (has ``repr`` and ``latent_dim``).
    decoder
        A registered decoder ``(B, d) -> (B, L, L)``.

    Shapes
    ------
    ``forward(x) -> AEOutput(latent (B, d), recon (B, L, L))`` where x is the encoder's
    representation of a batch.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.repr_name: str = encoder.repr
        self.latent_dim: int = encoder.latent_dim
        self.n_loci: int = decoder.n_loci

    def encode(self, x) -> torch.Tensor:
        """Representation batch -> ``(B, d)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, d) -> (B, L, L)``."""
        return self.decoder(z)

    def forward(self, x) -> AEOutput:
        z = self.encode(x)
        return AEOutput(latent=z, recon=self.decode(z))
