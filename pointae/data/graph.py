"""Graph representation of traces: dense batched graphs, and PyG ``Data`` for single traces.

Nodes are loci (missing loci stay in the graph, flagged, so a model can inpaint them); edges
are chain neighbours plus the k nearest observed neighbours (``torch.cdist`` + ``topk``; no
torch-cluster needed). Node and edge features are built from distances and chain positions
only, never raw coordinates, so the graph is invariant to rotations, reflections and
translations of the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from pointae.data.chain import as_coords, chain_features, filled_distance_maps
from pointae.data.transforms import distance_maps_torch


@dataclass
class DenseGraph:
    """A batch of graphs with a fixed number of nodes L.

    Attributes
    ----------
    x
        ``(B, L, F)`` node features: observed flag, chain-position encodings, distances to the
        chain neighbours (no raw coordinates).
    adj
        ``(B, L, L)`` bool adjacency (symmetric, no self loops): chain neighbours + kNN among
        observed loci.
    edge_attr
        ``(B, L, L, E)`` features of *every* pair (use ``adj`` to select edges): RBF expansion
        and raw value of the distance (for pairs with a missing locus: the distance after
        linear interpolation along the chain, flagged as such), a distance-known flag,
        chain-separation features.
    node_mask
        ``(B, L)`` bool, True where the locus is observed.
    """

    x: torch.Tensor
    adj: torch.Tensor
    edge_attr: torch.Tensor
    node_mask: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> DenseGraph:
        """Move every tensor to ``device``."""
        return DenseGraph(
            **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)}
        )

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, idx) -> DenseGraph:
        return DenseGraph(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @property
    def shape(self) -> tuple[int, int]:
        """``(B, L)``."""
        return tuple(self.x.shape[:2])


class GraphRepr:
    """Coordinates ``(B, L, 3)`` -> :class:`DenseGraph`.

    Parameters
    ----------
    k
        Nearest observed neighbours per locus (in 3D), on top of the chain neighbours.
    n_rbf
        Gaussian radial basis functions for the pair distances, centres evenly spaced in
        ``[0, rbf_max]`` (scaled units: 1 = a typical bond).
    rbf_max
        Largest RBF centre.
    n_freq
        Frequencies of the chain-position encoding.

    Notes
    -----
    ``node_features = 2 * n_freq + 6`` (observed flag, encodings, ``i/(L-1)``, distance to the
    previous/next locus and their known flags); ``edge_features = n_rbf + 5``: channel 0 the
    distance (on pairs with a missing locus: the chain-interpolated estimate), 1 distance
    known, then the RBFs of the distance, ``|i-j|/(L-1)``, ``1/|i-j|``, chain-neighbour flag.
    """

    name = "graph"

    def __init__(self, k: int = 8, n_rbf: int = 16, rbf_max: float = 8.0, n_freq: int = 4):
        self.k, self.n_rbf, self.rbf_max, self.n_freq = k, n_rbf, rbf_max, n_freq
        self.node_features = 2 * n_freq + 6
        self.edge_features = n_rbf + 5

    def __call__(
        self, coords, *, train: bool = False, generator: torch.Generator | None = None
    ) -> DenseGraph:
        c = as_coords(coords)
        b, n, _ = c.shape
        dev, dt = c.device, c.dtype
        d = distance_maps_torch(c)  # (B, L, L), NaN where a locus is missing
        known = ~torch.isnan(d)  # (B, L, L)
        mask = known.diagonal(dim1=1, dim2=2)  # (B, L) observed loci
        d0 = torch.nan_to_num(d, nan=0.0)
        filled = filled_distance_maps(c, d)  # (B, L, L): interpolated estimate on missing pairs

        # --- adjacency: chain neighbours (all loci) + kNN among observed loci
        idx = torch.arange(n, device=dev)
        sep = (idx[:, None] - idx[None, :]).abs()  # (L, L)
        chain = (sep == 1).expand(b, n, n)
        k = min(self.k, n - 1)
        adj = chain.clone()
        if k > 0:
            eye = torch.eye(n, dtype=torch.bool, device=dev)
            dk = d0.masked_fill(~known | eye, float("inf"))  # (B, L, L)
            val, nb = dk.topk(k, dim=-1, largest=False)  # (B, L, k)
            knn = torch.zeros(b, n, n, dtype=torch.bool, device=dev)
            knn.scatter_(2, nb, torch.isfinite(val))
            adj = adj | knn | knn.transpose(1, 2)

        # --- edge features for every pair
        centres = torch.linspace(0.0, self.rbf_max, self.n_rbf, device=dev, dtype=dt)
        width = self.rbf_max / max(self.n_rbf - 1, 1)
        z = (filled[..., None] - centres).mul_(1.0 / width)  # (B, L, L, R)
        # clamp: exp of very negative arguments yields denormals, ~5x slower on CPU
        rbf = z.mul_(z).clamp_(max=30.0).neg_().exp_()
        sepf = sep.to(dt)
        pair = torch.stack(
            [sepf / max(n - 1, 1), torch.where(sep > 0, 1.0 / sepf.clamp(min=1), 0.0), (sep == 1).to(dt)], -1
        ).expand(b, n, n, 3)  # (B, L, L, 3)
        # channel 0 is the (filled) distance itself: task models use it as a residual skip path
        edge_attr = torch.cat([filled[..., None], known[..., None].to(dt), rbf, pair], dim=-1)  # (B, L, L, E)

        # --- node features: observed flag, chain position, bond lengths to chain neighbours
        nxt = torch.diagonal(d, offset=1, dim1=1, dim2=2)  # (B, L-1)
        nan_col = torch.full((b, 1), float("nan"), device=dev, dtype=dt)
        prev_d, next_d = torch.cat([nan_col, nxt], 1), torch.cat([nxt, nan_col], 1)  # (B, L)
        local = torch.stack(
            [
                torch.nan_to_num(prev_d, nan=0.0),
                (~torch.isnan(prev_d)).to(dt),
                torch.nan_to_num(next_d, nan=0.0),
                (~torch.isnan(next_d)).to(dt),
            ],
            -1,
        )  # (B, L, 4)
        pos = chain_features(n, self.n_freq, device=dev, dtype=dt).expand(b, n, -1)  # (B, L, 2F+1)
        x = torch.cat([mask[..., None].to(dt), pos, local], dim=-1)  # (B, L, F)
        return DenseGraph(x=x, adj=adj, edge_attr=edge_attr, node_mask=mask)

    def __repr__(self) -> str:
        return (
            f"GraphRepr(k={self.k}, n_rbf={self.n_rbf}, rbf_max={self.rbf_max}, n_freq={self.n_freq}, "
            f"node_features={self.node_features}, edge_features={self.edge_features})"
        )


def to_pyg(coords_one_trace, rep: GraphRepr | None = None):
    """One trace ``(L, 3)`` -> ``torch_geometric.data.Data(pos, x, edge_index, edge_attr)``.

    Same nodes, edges and features as :class:`GraphRepr` (sparse form, for PyG users);
    ``pos`` holds the coordinates (NaN for missing loci), ``mask`` the observed flags.
    """
    from torch_geometric.data import Data

    rep = rep or GraphRepr()
    c = as_coords(coords_one_trace)
    if c.shape[0] != 1:
        raise ValueError(f"to_pyg takes one trace (L, 3), got {tuple(c.shape)}")
    g = rep(c)
    src, dst = g.adj[0].nonzero(as_tuple=True)  # (E,), (E,)
    return Data(
        pos=c[0],
        x=g.x[0],
        edge_index=torch.stack([src, dst]),
        edge_attr=g.edge_attr[0, src, dst],
        mask=g.node_mask[0],
    )
