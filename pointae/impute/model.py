"""The imputation network: a dilated CNN on the masked distance map that places missing loci.

For every missing locus ``h`` the network scores every observed locus ``j`` (a ``(L, L)`` score
map from a fully convolutional, dilated residual CNN on pair features) and places ``h`` at an
*affine combination* of the observed positions::

    a_hj = softmax_j(S_hj + log(w_lin_hj + eps)) + c_hj - softmax_hj * sum_k c_hk     (sum_j a_hj = 1)
    x_h  = sum_j a_hj x_j

``w_lin`` are the linear-interpolation weights (so an untrained network starts at linear
interpolation), ``c`` a bounded correction that allows extrapolation beyond the convex hull.
Because the weights depend only on distances (rotation/translation/reflection invariant) and sum
to one, the placement is exactly equivariant to rigid motions, observed loci are never moved, and
the imputed map is the distance map of real 3D coordinates (consistent by construction).

With ``refine_steps > 0`` the placed structure is then moved towards the network's predicted
distance map by that many unrolled stress-majorisation updates of the missing loci
(:func:`refine_to_map`, differentiable), so training optimises the refined 3D coordinates end to
end; the refinement is also rigid-motion equivariant and never moves an observed locus.

All lengths are divided by a calibration ``scale`` (the data's median neighbour distance) before
the network sees them, so nm, micron and bead-unit data share one model; the network is fully
convolutional, so any number of loci works.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn

from pointae.data.transforms import distance_maps_torch

N_FEATURES = 8


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Temporarily cap torch's intra-op threads (small tensors run faster on one busy core)."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n, old)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN with AVX512-BF16 / AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


@contextlib.contextmanager
def inference_precision(model: nn.Module, precision: str = "auto") -> Iterator[str]:
    """Temporarily run the imputer CNN(s) of ``model`` in ``"bf16"`` or ``"fp32"``.

    ``"auto"`` picks bfloat16 where the CPU supports it natively (:func:`bf16_supported`): about
    3x faster there, with a protocol ratio within 0.001 of fp32 (docs/impute.md); only the
    convolutional trunk is affected, placement and refinement stay in fp32. Yields the precision
    used.
    """
    from pointae import registry

    registry.precisions.check(precision, "precision")
    use = precision == "bf16" or (precision == "auto" and bf16_supported())
    nets = [m for m in model.modules() if isinstance(m, Imputer)]
    old = [m.bf16 for m in nets]
    for m in nets:
        m.bf16 = use
        if use:  # a bfloat16 copy of the trunk (the fp32 weights stay untouched)
            trunk = _Trunk(copy.deepcopy(m.stem), copy.deepcopy(m.blocks), copy.deepcopy(m.head))
            m.__dict__["_bf16_trunk"] = trunk.to(torch.bfloat16).to(memory_format=torch.channels_last).eval()
    try:
        yield "bf16" if use else "fp32"
    finally:
        for m, o in zip(nets, old):
            m.bf16 = o
            m.__dict__.pop("_bf16_trunk", None)


class _Trunk(nn.Module):
    def __init__(self, stem: nn.Module, blocks: nn.ModuleList, head: nn.Module):
        super().__init__()
        self.stem, self.blocks, self.head = stem, blocks, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for blk in self.blocks:
            h = blk(h)
        return self.head(h)


@dataclass
class ImputerConfig:
    """Architecture hyper-parameters (stored next to the weights)."""

    channels: int = 16
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2)
    prior_eps: float = 1e-3
    correction: float = 0.0
    refine_steps: int = 10
    activation: str = "gelu"  # "gelu" or "relu" (relu: about 3x cheaper per pass on a CPU)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ImputerConfig:
        d = dict(d)
        d["dilations"] = tuple(d.get("dilations", cls.dilations))
        d.setdefault("refine_steps", 0)  # models saved before the unrolled refinement existed
        d.setdefault("activation", "gelu")  # models saved before the option existed
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def linear_weights(mask: torch.Tensor) -> torch.Tensor:
    """Linear-interpolation weights as a matrix.

    Parameters
    ----------
    mask
        ``(B, L)`` bool, True where observed.

    Returns
    -------
    torch.Tensor
        ``(B, L, L)`` float: row ``i`` holds the weights of the observed loci that linear
        interpolation along the chain uses for locus ``i`` (identity rows for observed loci,
        constant extrapolation at the ends). Rows of traces with no observed locus are zero.
    """
    b, n_loci = mask.shape
    idx = torch.arange(n_loci, device=mask.device).expand(b, n_loci)
    prev = torch.where(mask, idx, torch.full_like(idx, -1)).cummax(1).values  # (B, L)
    nxt_flipped = torch.where(mask, n_loci - 1 - idx, torch.full_like(idx, -1)).flip(1).cummax(1).values
    nxt = (n_loci - 1 - nxt_flipped.flip(1)).masked_fill(nxt_flipped.flip(1) < 0, n_loci)  # (B, L)
    has_prev, has_next = prev >= 0, nxt < n_loci
    p = torch.where(has_prev, prev, nxt).clamp(0, n_loci - 1)
    q = torch.where(has_next, nxt, prev).clamp(0, n_loci - 1)
    span = (q - p).clamp(min=1).to(torch.float32)
    t = torch.where(q > p, (idx - p).to(torch.float32) / span, torch.zeros_like(span))
    w = torch.zeros(b, n_loci, n_loci, device=mask.device)
    w.scatter_add_(2, p[..., None], (1 - t)[..., None])
    w.scatter_add_(2, q[..., None], t[..., None])
    return w * mask.any(1)[:, None, None]


def pair_features(coords: torch.Tensor, scale: float | torch.Tensor) -> dict[str, torch.Tensor]:
    """Invariant input features of a batch of traces.

    Parameters
    ----------
    coords
        ``(B, L, 3)``, NaN where missing (to impute).
    scale
        Length unit (median neighbour distance of the data), scalar or ``(B,)``.

    Returns
    -------
    dict
        ``x``: ``(B, 8, L, L)`` features (log1p of the scaled observed map and of the linearly
        interpolated map, pair mask, log1p of the chain separation, row/column masks, row/column
        "missing" indicators); ``mask`` ``(B, L)``; ``w_lin`` ``(B, L, L)``; ``pos`` ``(B, L, 3)``
        centred and scaled observed coordinates with zeros at missing loci; ``centre`` ``(B, 1, 3)``.
    """
    mask = ~torch.isnan(coords[..., 0])  # (B, L)
    b, n_loci = mask.shape
    scale = torch.as_tensor(scale, dtype=torch.float32, device=coords.device).reshape(-1, 1, 1)
    x0 = torch.where(mask[..., None], coords, torch.zeros((), dtype=coords.dtype)).to(torch.float32)
    n_obs = mask.sum(1).clamp(min=1)[:, None, None].to(torch.float32)
    centre = x0.sum(1, keepdim=True) / n_obs  # (B, 1, 3)
    pos = torch.where(mask[..., None], (x0 - centre) / scale, torch.zeros(()))  # (B, L, 3)
    w_lin = linear_weights(mask)  # (B, L, L)
    lin = w_lin @ pos  # (B, L, 3)
    d_obs = distance_maps_torch(torch.where(mask[..., None], pos, torch.full((), float("nan"))))
    pm = mask[:, :, None] & mask[:, None, :]
    d_obs = torch.nan_to_num(d_obs, nan=0.0)
    d_lin = torch.cdist(lin, lin)  # (B, L, L)
    idx = torch.arange(n_loci, device=coords.device, dtype=torch.float32)
    sep = torch.log1p((idx[:, None] - idx[None, :]).abs()).expand(b, n_loci, n_loci)
    mf = mask.to(torch.float32)
    row = mf[:, :, None].expand(b, n_loci, n_loci)
    col = mf[:, None, :].expand(b, n_loci, n_loci)
    x = torch.stack(
        [torch.log1p(d_obs), torch.log1p(d_lin), pm.to(torch.float32), sep, row, col, 1 - row, 1 - col],
        dim=1,
    )  # (B, 8, L, L)
    return {"x": x, "mask": mask, "w_lin": w_lin, "pos": pos, "centre": centre, "scale": scale}


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown imputer activation {name!r} (choose from {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]()


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int, activation: str = "gelu"):
        super().__init__()
        self.norm = nn.GroupNorm(4, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(channels, channels, 1)
        self.act = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(self.norm(x)))))


class Imputer(nn.Module):
    """Dilated residual CNN that imputes missing loci by weighted placement.

    Parameters
    ----------
    config
        :class:`ImputerConfig`.

    Shapes
    ------
    ``forward(coords (B, L, 3), scale) -> dict`` with ``coords`` ``(B, L, 3)`` (observed loci
    bit-for-bit, missing ones placed and refined), ``direct`` (the placement before the
    ``refine_steps`` refinement), ``weights`` ``(B, L, L)`` (rows sum to one over observed
    loci), ``spread`` ``(B, L)`` (weighted RMS distance of the used loci from the placed
    position, in data units: an uncertainty length) and ``map`` ``(B, L, L)``: the predicted
    distance map (data units), whose pairs with a placed locus are the placed structure's
    distances times a learned factor (the network's raw distance prediction).
    """

    def __init__(self, config: ImputerConfig | None = None):
        super().__init__()
        self.config = config or ImputerConfig()
        c = self.config.channels
        self.stem = nn.Conv2d(N_FEATURES, c, 1)
        act = self.config.activation
        self.blocks = nn.ModuleList([_Block(c, d, act) for d in self.config.dilations])
        # head channels: placement logits, affine correction, log-factor of the predicted map
        self.head = nn.Sequential(nn.GroupNorm(4, c), _activation(act), nn.Conv2d(c, 3, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.bf16 = False  # run the CNN in bfloat16 at inference (see :func:`inference_precision`)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The CNN: features ``(B, 8, L, L)`` to head outputs ``(B, 3, L, L)``."""
        h = self.stem(x)  # (B, C, L, L)
        for blk in self.blocks:
            h = blk(h)
        return self.head(h)

    def weights(self, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Placement weights ``(B, L, L)`` and map log-factors ``(B, L, L)`` (symmetric)."""
        if self.bf16 and not torch.is_grad_enabled():
            # inference: a bfloat16 copy of the CNN, channels-last (oneDNN); everything after it in fp32
            x = feats["x"].to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
            out = self._bf16_trunk(x).float().contiguous()
        else:
            out = self.trunk(feats["x"])  # (B, 3, L, L)
        log_factor = 0.5 * (out[:, 2] + out[:, 2].transpose(1, 2))  # (B, L, L) symmetric
        mask = feats["mask"]
        col = mask[:, None, :]  # (B, 1, L) observed columns
        logits = out[:, 0] + torch.log(feats["w_lin"] + self.config.prior_eps)
        logits = logits.masked_fill(~col, float("-inf"))
        soft = torch.softmax(logits, dim=-1)  # (B, L, L)
        soft = torch.nan_to_num(soft, nan=0.0)
        corr = self.config.correction * torch.tanh(out[:, 1]) * col  # (B, L, L)
        return soft + corr - soft * corr.sum(-1, keepdim=True), log_factor

    def forward(self, coords: torch.Tensor, scale: float | torch.Tensor) -> dict[str, torch.Tensor]:
        feats = pair_features(coords, scale)
        w, log_factor = self.weights(feats)  # (B, L, L) each
        placed = w @ feats["pos"]  # (B, L, 3) scaled, centred
        mask = feats["mask"]
        full = torch.where(mask[..., None], feats["pos"], placed)  # (B, L, 3)
        base = torch.cdist(full, full)  # (B, L, L) distances of the placed structure
        eye = torch.eye(base.shape[-1], dtype=torch.bool, device=base.device)
        base = (0.5 * (base + base.transpose(1, 2))).masked_fill(eye, 0.0)  # exact symmetry, zero diagonal
        known = mask[:, :, None] & mask[:, None, :]
        # predicted map: observed distances where both loci are observed, otherwise the placed
        # structure's distances times a learned symmetric factor (symmetric, zero diagonal and
        # non-negative by construction); ``map_detached`` trains the factor without moving loci
        map_detached = torch.where(known, base, base.detach() * torch.exp(log_factor))
        pred_map = torch.where(known, base, base * torch.exp(log_factor))
        direct = full
        if self.config.refine_steps > 0:
            full = refine_to_map(full, pred_map, mask, self.config.refine_steps)
            placed = full
        # weighted RMS distance of the used loci: sum_j |w_ij| |p_j - x_i|^2, expanded so that no
        # (B, L, L, 3) tensor is built (centred, scaled coordinates: no cancellation to speak of)
        wa, pos = w.abs(), feats["pos"]
        sq = (wa @ (pos**2).sum(-1, keepdim=True))[..., 0] - 2 * ((wa @ pos) * placed).sum(-1)
        sq = sq + (placed**2).sum(-1) * wa.sum(-1)
        spread = torch.sqrt(sq.clamp(min=0.0) + 1e-12)  # (B, L)
        out = placed * feats["scale"] + feats["centre"]
        out = torch.where(mask[..., None], coords, out.to(coords.dtype))
        before = direct * feats["scale"] + feats["centre"]
        before = torch.where(mask[..., None], coords, before.to(coords.dtype))
        return {
            "coords": out,
            "direct": before,
            "scaled": placed,
            "pos": feats["pos"],
            "weights": w,
            "spread": spread * feats["scale"][:, 0],
            "mask": mask,
            "map": pred_map * feats["scale"],
            "map_detached": map_detached * feats["scale"],
        }


def refine_to_map(x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Differentiable stress refinement of the missing loci towards a target map.

    ``steps`` simultaneous (Jacobi) Guttman updates of unweighted stress majorisation: each
    missing locus ``i`` moves to ``mean_{j != i} (x_j + D_ij (x_i - x_j) / |x_i - x_j|)``;
    observed loci never move. Used inside :class:`Imputer` (``refine_steps > 0``) so that
    training optimises the protocol's L1 error of the *refined* 3D structure end to end, and
    after the network (more steps, same update) as the final placement. Only the rows of missing
    loci are computed (``(B, K, L)`` with ``K`` the most missing loci of a trace in the batch), so
    the cost scales with the number of loci that need work.

    Each step is computed without a ``(B, K, L, 3)`` tensor: with ``r_ij = D_ij / |x_i - x_j|``
    (``r_ii = 0``), ``R_i = sum_j r_ij`` and ``S = sum_j x_j`` the update is
    ``((S - x_i) + R_i x_i - (r @ x)_i) / (L - 1)``, and the distances come from the Gram matrix
    (``|x_i|^2 + |x_j|^2 - 2 x_i . x_j``, one ``bmm``) of the coordinates centred once on their
    mean, so large raw coordinates lose no precision; the same update as the direct formula to
    float rounding (a test compares both, and their gradients).

    Parameters
    ----------
    x
        ``(B, L, 3)`` complete coordinates (scaled units).
    target
        ``(B, L, L)`` target distances (same units); only rows of missing loci are read.
    mask
        ``(B, L)`` bool, True where observed (fixed).
    steps
        Number of updates.
    """
    b, n_loci = mask.shape
    free = ~mask
    k = int(free.sum(1).max()) if steps > 0 and b else 0
    if k == 0:
        return x
    # free loci first (stable order), padded with observed ones that are written back unchanged
    order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :k]  # (B, K)
    valid = torch.gather(free, 1, order)[..., None]  # (B, K, 1)
    idx3 = order[..., None].expand(b, k, 3)
    other = order[..., None] != torch.arange(n_loci, device=x.device)  # (B, K, L): j != i
    tgt = torch.gather(target, 1, order[..., None].expand(b, k, n_loci)) * other  # (B, K, L), r_ii = 0
    centre = x.mean(1, keepdim=True)  # (B, 1, 3): the update is translation-equivariant
    xc = x - centre
    for _ in range(steps):
        xi = torch.gather(xc, 1, idx3)  # (B, K, 3)
        sq = (xc * xc).sum(-1)  # (B, L)
        gram = torch.bmm(xi, xc.transpose(1, 2))  # (B, K, L)
        d2 = (torch.gather(sq, 1, order)[..., None] + sq[:, None, :] - 2 * gram).clamp(min=0)
        r = tgt / torch.sqrt(d2 + 1e-8)  # (B, K, L)
        upd = (xc.sum(1, keepdim=True) - xi + xi * r.sum(-1, keepdim=True) - torch.bmm(r, xc)) / (n_loci - 1)
        xc = xc.scatter(1, idx3, torch.where(valid, upd, xi))
    # observed loci (and the padding rows) are written back from x itself: bit for bit
    return x.scatter(
        1, idx3, torch.where(valid, torch.gather(xc, 1, idx3) + centre, torch.gather(x, 1, idx3))
    )


def describe(model: Imputer | ImputerEnsemble) -> str:
    """One line: parameter count, receptive field and ensemble size."""
    rf = 1 + 2 * sum(model.config.dilations)
    k = len(model.members) if isinstance(model, ImputerEnsemble) else 1
    what = f"ensemble of {k} " if k > 1 else ""
    return f"Imputer({what}{model.n_parameters():,} parameters, receptive field {rf} loci)"


class ImputerEnsemble(nn.Module):
    """Several :class:`Imputer` members whose outputs are averaged.

    Placements, weights, spreads and predicted maps are arithmetic means of the members' (so the
    map stays symmetric, zero-diagonal and non-negative, and observed loci stay exact).

    Parameters
    ----------
    members
        Trained imputers with the same architecture.
    """

    def __init__(self, members: list[Imputer]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> ImputerConfig:
        return self.members[0].config

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, coords: torch.Tensor, scale: float | torch.Tensor) -> dict[str, torch.Tensor]:
        outs = [m(coords, scale) for m in self.members]
        avg = {k: torch.stack([o[k] for o in outs]).mean(0) for k in outs[0] if k != "mask"}
        avg["mask"] = outs[0]["mask"]
        avg["coords"] = torch.where(avg["mask"][..., None], coords, avg["coords"])
        avg["direct"] = torch.where(avg["mask"][..., None], coords, avg["direct"])
        return avg
