"""Batched polymer dynamics in torch: ``C`` independent chains of ``M`` monomers at once.

Model (units: kT = 1, bond length b = 1)
----------------------------------------
- Gaussian (harmonic, zero rest length) bonds ``U = k/2 |x_{i+1} - x_i|^2`` with ``k = 3``, so the
  root-mean-square bond length is exactly 1 and an ideal chain has ``<R_ee^2> = (M - 1) b^2``.
- Optional angle stiffness ``U = k_a (1 - cos theta)`` on consecutive bond pairs.
- Soft-core excluded volume between all non-bonded pairs of a chain: by default the smooth polynomial
  ``U(r) = e (1 - r^2 / sigma^2)^2`` for ``r < sigma`` (``U(0) = e``, zero value and slope at sigma), or
  polychrom's stiffer polynomial ``U(r) = e (1 + u^6 (u - 1) 823543 / 46656)`` with
  ``u = (6/7) r^2 / sigma^2``. Both are finite at r = 0, so chains cross rarely, as topo-II allows.
- Optional block attraction (a block copolymer): same-block pairs feel
  ``U = -e_att (1 - r^2 / r_att^2)^2`` for ``r < r_att``.
- Optional spherical confinement at a density ``rho`` (monomers per unit volume):
  ``U = k_c/2 (r - R)^2`` for ``r > R``, ``R = (3 M / (4 pi rho))^(1/3)``.
- Extra harmonic bonds between the two legs of each loop-extruding factor (see :mod:`.extrusion`).

Integrator
----------
Preconditioned overdamped Langevin dynamics with a constant positive-definite mobility ``G`` (so the
stationary distribution is exactly Boltzmann; ``G`` only sets how fast it is sampled):

- without LEFs, ``G`` is diagonal in Rouse modes, ``mu_p = 1 / (k max(lambda_p, lambda_c))``: modes
  finer than the cross-over ``lambda_c`` relax at rate 1, coarser ones at ``lambda_p / lambda_c``
  (``lambda_c = 4`` is plain Rouse dynamics). This "Fourier acceleration" removes most of the ``N^2``
  Rouse slowing-down;
- with LEFs, ``G = K^-1`` per chain for ``K = k L + k_lef sum b b^T + eps I`` (backbone bonds, LEF
  bonds, a shift ``eps = k lambda_c``), rebuilt after every LEF step by the Woodbury identity.

Steps use the Leimkuhler-Matthews scheme by default (``integrator="lm"``): exact for the harmonic
part at any stable step, O(dt^2) bias otherwise; ``"euler"`` is an exponential integrator for the
linear part plus an Euler step for the rest. Dynamics are therefore *not* physical time; only the
sampled equilibrium (given the instantaneous loops) is meaningful.

Memory: pair forces never build a ``(C, M, M, 3)`` tensor. Per chunk of chains we build ``(c, M, M)``
pair weights ``w_ij`` (force ``F_i = sum_j w_ij (x_i - x_j)``) and reduce with one batched matmul:
``F = x * w.sum(-1) - x @ w``; the default soft core takes three passes (see
:meth:`ChainBatch._pair_soft_core`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pointae.errors import PointaeError

_EMIN12 = 46656.0 / 823543.0
_UMAX = 6.0 / 7.0


@dataclass
class ForceField:
    """Force-field parameters of one chain type (all chains in a batch share them).

    Parameters
    ----------
    n_monomers
        Monomers per chain ``M``.
    bond_k
        Bond stiffness (kT / b^2); ``3`` gives rms bond length 1.
    angle_k
        Angle stiffness (kT); 0 disables.
    ev_strength
        Height of the soft core at r = 0 (kT); 0 disables excluded volume.
    ev_radius
        Soft-core radius sigma (b).
    ev_potential
        ``"quadratic"`` (default) ``U = e (1 - r^2/sigma^2)^2``, or ``"polychrom"``'s stiffer polynomial.
    confine_density
        Monomer density of the confining sphere; ``None`` means free space.
    confine_k
        Wall stiffness (kT / b^2).
    blocks
        Optional int array ``(M,)`` of block ids; same-block pairs attract (ids < 0 never attract).
    attract_strength, attract_radius
        Depth (kT) and range (b) of the block attraction.
    lef_k
        Stiffness of the harmonic bond between the two legs of a LEF (kT / b^2).
    """

    n_monomers: int
    bond_k: float = 3.0
    angle_k: float = 0.0
    ev_strength: float = 3.0
    ev_radius: float = 1.05
    ev_potential: str = "quadratic"
    confine_density: float | None = None
    confine_k: float = 5.0
    blocks: np.ndarray | None = None
    attract_strength: float = 0.0
    attract_radius: float = 1.6
    lef_k: float = 12.0

    @property
    def confine_radius(self) -> float | None:
        """Radius of the confining sphere (b), or None."""
        if not self.confine_density:
            return None
        return (3.0 * self.n_monomers / (4.0 * math.pi * self.confine_density)) ** (1.0 / 3.0)


def rouse_modes(m: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal Rouse modes of a free chain of ``m`` beads (the path-graph Laplacian).

    Returns
    -------
    q : (m, m) tensor
        Column ``p`` is mode ``p`` (``q[:, 0]`` the centre of mass), ``q.T @ q = I``.
    lam : (m,) tensor
        Laplacian eigenvalues ``4 sin^2(p pi / 2m)``.
    """
    i = torch.arange(m, dtype=dtype)
    p = torch.arange(m, dtype=dtype)
    q = torch.cos(math.pi * p[None, :] * (i[:, None] + 0.5) / m) * math.sqrt(2.0 / m)
    q[:, 0] = 1.0 / math.sqrt(m)
    lam = 4.0 * torch.sin(p * math.pi / (2 * m)) ** 2
    return q, lam


class ChainBatch:
    """State and integrator for ``C`` independent chains.

    Positions are stored as ``(C, 3, M)`` so that the mode transform is one GEMM over ``(3C, M)``.

    Parameters
    ----------
    ff
        The force field.
    n_chains
        Number of chains ``C``.
    dt
        Time step (units of the fastest accelerated relaxation time).
    lambda_c
        Mobility cross-over eigenvalue (see module docstring); ``4`` = plain Rouse dynamics.
    generator
        Torch generator (on ``device``) for the noise; the only randomness used.
    device, dtype
        Where and in what precision to integrate.
    chunk
        Chains per pair-force chunk; ``None`` picks one that keeps ``(chunk, M, M)`` near 1 M floats.
    metropolis
        Accept/reject each proposal (MALA) so the stationary distribution is exact at any ``dt``.
    integrator
        ``"lm"`` (default): the preconditioned Leimkuhler-Matthews scheme (each step's noise is the
        mean of two consecutive normal draws). Exact for the linear part (bonds, LEF bonds) at any
        stable ``dt < 2`` and second-order accurate (bias O(dt^2)) for the sampled averages otherwise.
        ``"euler"``: exponential integrator for the linear part plus an Euler step for the rest
        (bias O(dt)); Metropolis proposals always use it.
    """

    def __init__(
        self,
        ff: ForceField,
        n_chains: int,
        dt: float = 0.2,
        lambda_c: float = 0.05,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        chunk: int | None = None,
        metropolis: bool = True,
        integrator: str = "lm",
    ):
        if integrator not in ("lm", "euler"):
            raise PointaeError(f"integrator must be 'lm' or 'euler', not {integrator!r}")
        self.integrator = integrator
        self._prev_noise: torch.Tensor | None = None  # the LM scheme's noise of the previous step
        self.ff = ff
        self.C = int(n_chains)
        self.M = m = int(ff.n_monomers)
        self.device = torch.device(device)
        self.dtype = dtype
        self.gen = generator
        self.dt = float(dt)
        self.lambda_c = float(lambda_c)
        self.chunk = chunk or max(1, min(self.C, 1_048_576 // (m * m)))
        q, lam = rouse_modes(m)
        k = ff.bond_k
        lam_eff = torch.clamp(lam, min=self.lambda_c)
        lam_eff[0] = max(self.lambda_c, float(lam[1])) if m > 1 else 1.0  # centre of mass
        mu = 1.0 / (k * lam_eff)  # mobility per mode
        a = mu * k * lam  # relaxation rate of the bond part per mode
        e = torch.exp(-a * dt)
        phi = torch.where(a > 0, (1 - e) / (k * lam).clamp(min=1e-300), mu * dt)
        var = torch.where(a > 0, (1 - e * e) / (k * lam).clamp(min=1e-300), 2 * mu * dt)
        sig = torch.sqrt(var)
        kw = dict(device=self.device, dtype=dtype)
        self.q = q.to(**kw)  # (M, M)
        self.qt = q.T.contiguous().to(**kw)
        self.lam = lam.to(**kw)
        self.e = e.to(**kw)
        self.phi = phi.to(**kw)
        self.sig = sig.to(**kw)
        self.mode_rate = a  # float64, for reporting
        # Leimkuhler-Matthews: modes' = (1 - h r) modes + h mu F + sqrt(h mu / 2) (xi_n + xi_{n+1})
        self.lm_a = (1.0 - dt * a).to(**kw)
        self.lm_b = (mu * dt).to(**kw)
        self.lm_c = torch.sqrt(mu * dt / 2).to(**kw)
        # state in mode space, (3C, M)
        self.modes = torch.zeros(3 * self.C, m, **kw)
        self.lef_left: torch.Tensor | None = None  # (C, n_lef) long, -1 = unbound
        self.lef_right: torch.Tensor | None = None
        r = ff.confine_radius
        self.confine_radius = r
        if ff.blocks is not None and ff.attract_strength > 0:
            b = torch.as_tensor(np.asarray(ff.blocks), device=self.device)
            same = (b[:, None] == b[None, :]) & (b[:, None] >= 0)
            off = (torch.arange(m)[:, None] - torch.arange(m)[None, :]).abs().to(self.device) > 1
            self.attract_mask = (same & off).to(dtype)
        else:
            self.attract_mask = None
        self.n_steps = 0
        # exact LEF bonds: per-chain inverse operator and positions stored directly (see set_lefs)
        self.kinv: torch.Tensor | None = None  # (C, M, M)
        self.x: torch.Tensor | None = None  # (C, 3, M) positions while kinv is in use
        self._lef_dtype = dtype  # precision of the per-LEF-step Woodbury update (float32 is ample)
        self.lef_exact = False
        self.metropolis = bool(metropolis)
        self._cache = None  # pair forces/energies at the current state (Metropolis)
        self.n_accepted = 0
        self.n_proposed = 0

    # ------------------------------------------------------------------ state
    def init_ideal(self) -> None:
        """Draw every chain from the exact ideal-chain (bond-only) distribution, centred at 0."""
        m = self.M
        std = torch.zeros(m, dtype=torch.float64)
        std[1:] = 1.0 / torch.sqrt(self.ff.bond_k * self.lam[1:].double().cpu())
        noise = torch.randn(3 * self.C, m, generator=self.gen, device=self.device, dtype=self.dtype)
        self.modes = noise * std.to(self.device, self.dtype)
        self._cache = None
        r = self.confine_radius
        if r is not None:  # shrink chains that stick out of the sphere
            x = self.positions()
            rmax = torch.linalg.vector_norm(x, dim=1).amax(-1)  # (C,)
            s = torch.clamp(0.9 * r / rmax, max=1.0)
            self.modes = (self.modes.view(self.C, 3, m) * s[:, None, None]).reshape(3 * self.C, m)
            self._cache = None

    def positions(self) -> torch.Tensor:
        """Monomer positions, ``(C, 3, M)``."""
        if self.kinv is not None:
            return self.x
        return (self.modes @ self.qt).view(self.C, 3, self.M)

    def _to_modes(self, f: torch.Tensor) -> torch.Tensor:
        """Project ``(C, 3, M)`` onto the Rouse modes, ``(3C, M)``."""
        return f.reshape(3 * self.C, self.M) @ self.q

    def set_positions(self, x: torch.Tensor) -> None:
        """Set positions ``(C, 3, M)``."""
        x = x.to(self.device, self.dtype)
        if self.kinv is not None:
            self.x = x.contiguous()
        else:
            self.modes = self._to_modes(x)
        self._cache = None

    def set_lefs(self, left: torch.Tensor | None, right: torch.Tensor | None, exact: bool = True) -> None:
        """Set LEF leg positions ``(C, n_lef)`` (monomer indices, ``-1`` = unbound) for the 3D bonds.

        The tensors are kept by reference (the 1D simulation updates them in place). With ``exact``
        the LEF bonds join the backbone bonds in each chain's linear operator, integrated exactly
        (stable for any stiffness); call :meth:`update_lef_operator` after every LEF move.
        """
        self.lef_left, self.lef_right = left, right
        self.lef_exact = bool(exact) and left is not None
        if self.lef_exact:
            self.update_lef_operator()

    def _backbone_inverse(self) -> torch.Tensor:
        """``T^-1`` (``(M, M)``) for ``T = k L + eps I`` (backbone bonds plus the shift).

        Also caches the step's coefficients and the two bands of the lower bidiagonal Cholesky
        factor of the noise covariance (apart from the LEF bonds) of :meth:`_lef_step`: for
        ``"euler"``, ``T' = (1 - e^2) k L + 2 (1 - e) eps I`` with ``e = exp(-dt)``; for ``"lm"``,
        ``(h / 2) T`` with ``h = dt``.
        """
        if getattr(self, "_tinv", None) is None:
            m, k, eps = self.M, self.ff.bond_k, self.eps
            lap = torch.zeros(m, m, dtype=torch.float64)
            i = torch.arange(m - 1)
            lap[i, i] += k
            lap[i + 1, i + 1] += k
            lap[i, i + 1] -= k
            lap[i + 1, i] -= k
            eye = torch.eye(m, dtype=torch.float64)
            kw = dict(device=self.device, dtype=self._lef_dtype)
            self._tinv = torch.linalg.inv(lap + eps * eye).to(**kw)
            h = self.dt
            if self.integrator == "lm":
                self._chol_e, self._chol_phi = 1.0 - h, h
                cov = (h / 2) * (lap + eps * eye)
                self._lef_noise = math.sqrt(h / 2 * self.ff.lef_k)
            else:
                e = math.exp(-h)
                self._chol_e, self._chol_phi = e, 1.0 - e
                cov = (1 - e * e) * lap + 2 * (1 - e) * eps * eye
                self._lef_noise = math.sqrt((1.0 - e * e) * self.ff.lef_k)
            chol = torch.linalg.cholesky(cov)
            self._tdiag = torch.diagonal(chol).to(**kw)  # (M,)
            self._tsub = torch.diagonal(chol, -1).to(**kw)  # (M-1,)
        return self._tinv

    @property
    def eps(self) -> float:
        """Diagonal shift ``k lambda_c`` that makes the per-chain operator invertible (exact LEF path)."""
        return self.ff.bond_k * self.lambda_c

    def update_lef_operator(self) -> None:
        """Rebuild each chain's ``K^-1`` for ``K = k L + k_lef sum_LEF b b^T + eps I`` (Woodbury).

        ``b = e_left - e_right`` per bound LEF. With ``T = k L + eps I`` (constant) and ``B`` the
        ``(n_lef, M)`` matrix of the ``b`` rows (zero for unbound LEFs),
        ``K^-1 = T^-1 - W S^-1 W^T`` with ``W = T^-1 B^T`` and ``S = I / k_lef + B T^-1 B^T`` (a
        small ``n_lef x n_lef`` system per chain), so the cost is a few batched products instead of a
        per-chain eigendecomposition. The integrator (:meth:`_lef_step`) uses the mobility ``K^-1``.
        """
        if not self.lef_exact:
            return
        x = self.positions()
        dt = self._lef_dtype
        tinv = self._backbone_inverse()  # (M, M), symmetric
        left, right = self.lef_left, self.lef_right
        c, n = left.shape
        bound = ((left >= 0) & (right > left)).to(dt)  # (C, n)
        li, ri = left.clamp(min=0), right.clamp(min=0)
        # W^T = B T^-1: rows T^-1[l] - T^-1[r], zero for unbound LEFs  -> (C, n, M)
        wt = (tinv[li.reshape(-1)] - tinv[ri.reshape(-1)]).view(c, n, self.M) * bound[:, :, None]
        # B T^-1 B^T = W^T B^T: columns l - r of W^T  -> (C, n, n)
        bw = wt.gather(2, li[:, None, :].expand(c, n, n)) - wt.gather(2, ri[:, None, :].expand(c, n, n))
        bw = bw * bound[:, None, :]
        s_mat = bw + torch.eye(n, dtype=dt, device=self.device) / self.ff.lef_k
        # S^-1 via Cholesky and cholesky_inverse (batched LAPACK solves with many right-hand sides
        # are ~10x slower on the CPU than forming the small inverse and multiplying)
        v = torch.bmm(torch.cholesky_inverse(torch.linalg.cholesky(s_mat)), wt)  # S^-1 W^T (C, n, M)
        kinv = torch.baddbmm(tinv, wt.transpose(1, 2), v, alpha=-1.0)
        self.kinv = kinv.to(self.dtype)
        self.x = x.contiguous()
        # per-LEF-step constants of the noise along the LEF bonds (see _lef_step)
        self._lef_li = li[:, None, :].expand(c, 3, n).contiguous()
        self._lef_ri = ri[:, None, :].expand(c, 3, n).contiguous()
        self._lef_scale = (self._lef_noise * bound.to(self.dtype))[:, None, :]

    def _lef_step(self) -> None:
        """One step with the mobility ``G = K^-1`` (``K`` including the shift ``eps I``), exact for the
        linear part (backbone and LEF bonds) at any stable ``dt``.

        ``F`` below holds the non-linear forces (excluded volume, confinement); ``+eps x`` undoes the
        shift; both enter explicitly. Per eigenmode of the unshifted operator (eigenvalue ``kappa``,
        ``g = 1 / (kappa + eps)``) the update is ``x' = a x + noise``:

        - ``"lm"`` (Leimkuhler-Matthews): ``x' = (1 - h) x + G (h (F + eps x) + sqrt(h / 2) (z_n +
          z_{n+1}))`` with ``z`` of covariance ``K`` (a bidiagonal factor of ``T`` times normals plus
          ``sqrt(k_lef)`` normals along each LEF bond); consecutive steps share one draw. Then
          ``a = 1 - h kappa g`` and the stationary variance is exactly ``1 / kappa`` for ``0 < h < 2``.
        - ``"euler"``: ``x' = e x + G ((1 - e) (F + eps x) + u)`` with ``e = exp(-h)`` and ``u`` of
          covariance ``(1 - e^2) K + (1 - e)^2 eps I``, so ``a = e + (1 - e) eps g`` and the per-mode
          variance ``(1 - e^2) g + (1 - e)^2 eps g^2 = (1 - a^2) / kappa`` is exact too.

        Modes stiffer than ``eps`` relax at rate ~1 per unit time, softer ones at
        ``kappa / (kappa + eps)``. One batched product with ``G`` per step.
        """
        x = self.x
        c, m = self.C, self.M
        n = self.lef_left.shape[1]
        lm = self.integrator == "lm"
        if lm:
            r = self._noise_pair((c, 3, m + n))
        else:
            r = torch.randn(c, 3, m + n, generator=self.gen, device=self.device, dtype=self.dtype)
        xi = r[:, :, :m]
        u = xi * self._tdiag
        u[:, :, 1:].addcmul_(xi[:, :, :-1], self._tsub)
        zeta = r[:, :, m:] * self._lef_scale
        u.scatter_add_(2, self._lef_li, zeta)
        u.scatter_add_(2, self._lef_ri, zeta.neg_())
        f = self.forces(x)
        g = u.add_(x, alpha=self.eps * self._chol_phi)
        if f is not None:
            g.add_(f, alpha=self._chol_phi)
        new = torch.bmm(g, self.kinv)  # G symmetric: rows of g times G
        self.x = new.add_(x, alpha=self._chol_e)

    # ------------------------------------------------------------------ forces and energies
    def _pair_terms(self, x: torch.Tensor, energy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pair forces ``(c, 3, M)`` (and energies ``(c,)`` float64) for positions ``x`` ``(c, 3, M)``."""
        ff = self.ff
        d2 = None
        for d in range(3):
            xd = x[:, d, :]
            diff = xd[:, :, None] - xd[:, None, :]
            if d2 is None:
                d2 = diff.mul_(diff)
            else:
                d2.addcmul_(diff, diff)
        w = None
        en = None
        if ff.ev_strength > 0 and ff.ev_potential == "polychrom":
            a = _UMAX / ff.ev_radius**2
            c = 2.0 * a * ff.ev_strength / _EMIN12
            u = (d2 * a).clamp_(max=_UMAX)  # (c, M, M)
            t = u * u
            t.mul_(t).mul_(u)  # u^5
            if energy:  # U = e (1 + u^6 (u - 1) / emin12), zero beyond the cut-off
                m = self.M
                s6 = (t * u).mul_(u - 1.0).sum((1, 2), dtype=torch.float64)
                en = 0.5 * ff.ev_strength * (m * m - m + s6 / _EMIN12)
            u.mul_(-7.0 * c).add_(6.0 * c)  # -c (7u - 6) >= 0: repulsive
            w = t.mul_(u)
        elif ff.ev_strength > 0:  # U = e (1 - r^2 / sigma^2)^2
            r2 = ff.ev_radius**2
            s = (1.0 - d2 / r2).clamp_(min=0.0)  # (c, M, M)
            if energy:
                en = 0.5 * ff.ev_strength * ((s * s).sum((1, 2), dtype=torch.float64) - self.M)
            w = s.mul_(4.0 * ff.ev_strength / r2)
        if self.attract_mask is not None:
            rc2 = ff.attract_radius**2
            s = (1.0 - d2 / rc2).clamp_(min=0.0).mul_(self.attract_mask)
            if energy:
                ea = -0.5 * ff.attract_strength * (s * s).sum((1, 2), dtype=torch.float64)
                en = ea if en is None else en + ea
            s.mul_(-4.0 * ff.attract_strength / rc2)
            w = s if w is None else w.add_(s)
        f = torch.mul(x, w.sum(-1)[:, None, :])
        f.sub_(torch.bmm(x, w))
        return f, en

    def _pair_soft_core(self, x: torch.Tensor) -> torch.Tensor:
        """Quadratic soft-core forces ``(c, 3, M)`` for ``x`` ``(c, 3, M)``, bonded pairs excluded.

        Three passes over ``(c, M, M)`` instead of a dozen elementwise ones:

        1. ``s_ij = 1 - d_ij^2 / sigma^2 + bias_ij`` from one batched product of augmented
           coordinates, ``[2 x_i / sigma^2, a_i, 1] . [x_j, 1, a_j]`` with ``a_i = 1/2 - |x_i|^2 /
           sigma^2`` (positions centred per chain first, so the expansion loses little precision);
           ``bias`` is ``-4`` on the diagonal and for bonded neighbours, ``0`` elsewhere;
        2. ``s = max(s, 0)`` in place;
        3. ``[x; 1] @ s`` gives ``sum_j s_ij x_j`` and the row sums at once (``s`` is symmetric).

        The force is ``F_i = 4 e / sigma^2 (x_i sum_j s_ij - sum_j s_ij x_j)``.
        """
        ff = self.ff
        r2 = ff.ev_radius**2
        xc = x - x.mean(-1, keepdim=True)
        c, _, m = xc.shape
        ones = torch.ones(c, 1, m, dtype=x.dtype, device=x.device)
        a = (xc * xc).sum(1, keepdim=True).mul_(-1.0 / r2).add_(0.5)  # (c, 1, M)
        lhs = torch.cat([xc * (2.0 / r2), a, ones], 1)  # (c, 5, M)
        rhs = torch.cat([xc, ones, a], 1)
        s = torch.baddbmm(self._exclusion_bias(), lhs.transpose(1, 2), rhs).clamp_(min=0.0)
        t = torch.bmm(torch.cat([xc, ones], 1), s)  # (c, 4, M): x @ s and the row sums
        f = xc * t[:, 3:]
        f.sub_(t[:, :3])
        return f.mul_(4.0 * ff.ev_strength / r2)

    def _exclusion_bias(self) -> torch.Tensor:
        """``(M, M)``: ``-4`` on the diagonal and the bonded neighbours (zeroed by the clamp), else 0."""
        if getattr(self, "_bias", None) is None:
            i = torch.arange(self.M, device=self.device)
            near = (i[:, None] - i[None, :]).abs() <= 1
            self._bias = torch.where(near, -4.0, 0.0).to(self.dtype)
        return self._bias

    def _pair(self, x: torch.Tensor, energy: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Chunked pair forces ``(C, 3, M)`` and energies ``(C,)`` (bonded neighbours excluded)."""
        ff = self.ff
        if not (ff.ev_strength > 0 or self.attract_mask is not None):
            return None, None
        if not energy and ff.ev_potential != "polychrom" and self.attract_mask is None:
            if x.shape[0] <= self.chunk:
                return self._pair_soft_core(x), None
            parts = [self._pair_soft_core(x[s : s + self.chunk]) for s in range(0, x.shape[0], self.chunk)]
            return torch.cat(parts), None
        f = torch.empty_like(x)
        en = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device) if energy else None
        for s in range(0, x.shape[0], self.chunk):
            fs, es = self._pair_terms(x[s : s + self.chunk], energy)
            f[s : s + self.chunk] = fs
            if energy:
                en[s : s + self.chunk] = es
        if ff.ev_strength > 0:
            # the bonded neighbours are excluded from the soft core: remove their contribution
            b = x[:, :, 1:] - x[:, :, :-1]  # (C, 3, M-1)
            bb = (b * b).sum(1)  # (C, M-1)
            if ff.ev_potential == "polychrom":
                a = _UMAX / ff.ev_radius**2
                c = 2.0 * a * ff.ev_strength / _EMIN12
                u = (bb * a).clamp_(max=_UMAX)
                u5 = u.pow(5)
                wb = u5 * (6.0 - 7.0 * u) * c
                eb = ff.ev_strength * (1.0 + u5 * u * (u - 1.0) / _EMIN12)
            else:
                sb = (1.0 - bb / ff.ev_radius**2).clamp_(min=0.0)
                wb = sb * (4.0 * ff.ev_strength / ff.ev_radius**2)
                eb = ff.ev_strength * sb * sb
            fb = b * wb[:, None, :]  # force on i+1 from i
            f[:, :, 1:] -= fb
            f[:, :, :-1] += fb
            if energy:
                en -= eb.sum(1, dtype=torch.float64)
        return f, en

    def _cheap(self, x: torch.Tensor, energy: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """O(M) forces and energies: angles, confinement, LEF bonds."""
        ff = self.ff
        f = None
        en = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device) if energy else None
        if ff.angle_k > 0:
            b = x[:, :, 1:] - x[:, :, :-1]  # (C, 3, M-1)
            n = torch.linalg.vector_norm(b, dim=1, keepdim=True).clamp_(min=1e-6)
            u = b / n
            b1, b2, n1, n2 = u[:, :, :-1], u[:, :, 1:], n[:, :, :-1], n[:, :, 1:]
            cos = (b1 * b2).sum(1, keepdim=True)
            g1 = (b2 - cos * b1) / n1  # dcos/db1, (C, 3, M-2)
            g2 = (b1 - cos * b2) / n2  # dcos/db2
            k = ff.angle_k  # U = k (1 - cos): F = k dcos/dx
            f = torch.zeros_like(x)
            f[:, :, :-2] -= k * g1
            f[:, :, 1:-1] += k * (g1 - g2)
            f[:, :, 2:] += k * g2
            if energy:
                en += k * (1.0 - cos[:, 0]).sum(1, dtype=torch.float64)
        if self.confine_radius is not None:
            r = (x * x).sum(1, keepdim=True).sqrt_().clamp_(min=1e-6)  # (C, 1, M)
            over = (r - self.confine_radius).clamp_(min=0.0)
            fc = x * (-ff.confine_k * over / r)
            f = fc if f is None else f.add_(fc)
            if energy:
                en += 0.5 * ff.confine_k * (over * over).sum((1, 2), dtype=torch.float64)
        if self.lef_left is not None and not self.lef_exact:
            left, right = self.lef_left, self.lef_right
            bound = (left >= 0) & (right > left)
            if bool(bound.any()):
                f = torch.zeros_like(x) if f is None else f
                idx_l = left.clamp(min=0)[:, None, :].expand(-1, 3, -1)
                idx_r = right.clamp(min=0)[:, None, :].expand(-1, 3, -1)
                d = (x.gather(2, idx_r) - x.gather(2, idx_l)) * bound[:, None, :].to(x.dtype)
                if energy:
                    en += 0.5 * ff.lef_k * (d * d).sum((1, 2), dtype=torch.float64)
                d = d * ff.lef_k
                f.scatter_add_(2, idx_l, d)
                f.scatter_add_(2, idx_r, -d)
        return f, en

    def forces(self, x: torch.Tensor) -> torch.Tensor | None:
        """All non-bond forces on positions ``x`` ``(C, 3, M)``; ``None`` when there are none."""
        fp, _ = self._pair(x, False)
        fc, _ = self._cheap(x, False)
        if fp is None:
            return fc
        return fp if fc is None else fp.add_(fc)

    def energy(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """Total potential energy per chain ``(C,)`` (float64, kT), backbone bonds included.

        LEF bonds are included only when they are integrated as forces (``set_lefs(..., exact=False)``).
        """
        x = self.positions() if x is None else x
        b = x[:, :, 1:] - x[:, :, :-1]
        e = 0.5 * self.ff.bond_k * (b * b).sum((1, 2), dtype=torch.float64)
        _, ep = self._pair(x, True)
        _, ec = self._cheap(x, True)
        return e + ec + (0.0 if ep is None else ep)

    def _bond_energy_modes(self, modes: torch.Tensor) -> torch.Tensor:
        """Bond energy per chain from modes ``(3C, M)``: ``sum_p k lambda_p / 2 |X_p|^2``."""
        e = (modes.double() ** 2 * (0.5 * self.ff.bond_k * self.lam.double())).sum(-1)
        return e.view(self.C, 3).sum(-1)

    # ------------------------------------------------------------------ dynamics
    def _noise_pair(self, shape: tuple[int, ...]) -> torch.Tensor:
        """``xi_n + xi_{n+1}``: the previous step's normals plus fresh ones (Leimkuhler-Matthews)."""
        fresh = torch.randn(shape, generator=self.gen, device=self.device, dtype=self.dtype)
        prev = self._prev_noise
        if prev is None or prev.shape != fresh.shape:
            prev = torch.randn(shape, generator=self.gen, device=self.device, dtype=self.dtype)
        self._prev_noise = fresh
        return fresh + prev

    def _lm_step(self) -> None:
        """One preconditioned Leimkuhler-Matthews step in Rouse-mode space.

        ``X' = X + h mu F(X) + sqrt(h mu / 2) (xi_n + xi_{n+1})`` per mode, with the bond force
        ``-k lambda X`` taken exactly as part of ``F``. For a harmonic mode this leaves the
        stationary variance exact at any stable ``h``; for the rest the bias of sampled averages is
        O(h^2) (Leimkuhler & Matthews 2013), against O(h) for Euler.
        """
        noise = self._noise_pair(tuple(self.modes.shape))
        f = self.forces(self.positions())
        new = self.modes * self.lm_a
        new.addcmul_(noise, self.lm_c)
        if f is not None:
            new.addcmul_(self._to_modes(f), self.lm_b)
        self.modes = new

    def step(self, n: int = 1) -> None:
        """Advance all chains by ``n`` steps.

        With ``metropolis`` every step is a Metropolis-adjusted Langevin proposal (per chain
        accept/reject, exponential-Euler proposals), so the sampled distribution is exactly Boltzmann
        at any ``dt`` (not combined with exact LEF bonds); otherwise it is one step of the
        ``integrator`` (see :meth:`_lm_step` and :meth:`_lef_step`).
        """
        for _ in range(n):
            if self.kinv is not None:
                self._lef_step()
                self.n_steps += 1
                continue
            if self.integrator == "lm" and not self.metropolis:
                self._lm_step()
                self.n_steps += 1
                continue
            x = self.positions()
            nonlinear = self.ff.ev_strength > 0 or self.attract_mask is not None or self.ff.angle_k > 0
            nonlinear = nonlinear or self.confine_radius is not None or self.lef_left is not None
            noise = torch.randn(self.modes.shape, generator=self.gen, device=self.device, dtype=self.dtype)
            if not self.metropolis or not nonlinear:
                f = self.forces(x)
                new = self.modes * self.e
                new.addcmul_(noise, self.sig.expand_as(noise))
                if f is not None:
                    new.addcmul_(self._to_modes(f), self.phi.expand_as(new))
                self.modes = new
                self.n_steps += 1
                continue
            if self._cache is None:
                self._cache = self._pair(x, True)
            fp, ep = self._cache
            fc, ec = self._cheap(x, True)
            f = fc if fp is None else (fp if fc is None else fp + fc)
            g = f.reshape(3 * self.C, self.M) @ self.q
            new = self.modes * self.e
            new.addcmul_(g, self.phi.expand_as(new))
            new.addcmul_(noise, self.sig.expand_as(noise))
            xn = (new @ self.qt).view(self.C, 3, self.M)
            fpn, epn = self._pair(xn, True)
            fcn, ecn = self._cheap(xn, True)
            fn = fcn if fpn is None else (fpn if fcn is None else fpn + fcn)
            gn = fn.reshape(3 * self.C, self.M) @ self.q
            # log acceptance: -dE + log q(old | new) - log q(new | old)
            e_old = self._bond_energy_modes(self.modes) + ec + (0.0 if ep is None else ep)
            e_new = self._bond_energy_modes(new) + ecn + (0.0 if epn is None else epn)
            back = (self.modes - new * self.e - gn * self.phi) / self.sig  # (3C, M)
            lq = 0.5 * (noise.double() ** 2).sum(-1) - 0.5 * (back.double() ** 2).sum(-1)
            log_a = -(e_new - e_old) + lq.view(self.C, 3).sum(-1)
            u = torch.rand(self.C, generator=self.gen, device=self.device, dtype=torch.float64)
            acc = torch.log(u) < log_a  # (C,)
            acc3 = acc.repeat_interleave(3)[:, None]
            self.modes = torch.where(acc3, new, self.modes)
            if fpn is not None:
                self._cache = (torch.where(acc[:, None, None], fpn, fp), torch.where(acc, epn, ep))
            self.n_accepted += acc.sum().item()
            self.n_proposed += self.C
            self.n_steps += 1

    @property
    def acceptance(self) -> float:
        """Fraction of accepted Metropolis proposals so far (1.0 without Metropolis)."""
        return self.n_accepted / self.n_proposed if self.n_proposed else 1.0

    def observables(
        self, lo: int = 0, hi: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Of monomers ``lo:hi``: end-to-end vector ``(C, 3)``, squared radius of gyration ``(C,)``
        and squared distance of their centre from the origin (the confining sphere's centre) ``(C,)``."""
        x = self.positions()[:, :, lo:hi]
        centre = x.mean(-1, keepdim=True)
        ree = x[:, :, -1] - x[:, :, 0]
        rg2 = ((x - centre) ** 2).sum(1).mean(-1)
        return ree, rg2, (centre**2).sum((1, 2))


def pair_force_flops(m: int, ev: bool = True, attract: bool = False) -> float:
    """Floating-point operations of the pair-force kernel per chain and step (dense, ``M x M``).

    Counts 3 (diff) + 6 (square, accumulate) for ``d^2``, 9 for the soft core, 5 for the attraction,
    1 for the row sum and 6 for the ``x @ w`` reduction and scaling per ordered pair.
    """
    per_pair = 9.0 + (9.0 if ev else 0.0) + (5.0 if attract else 0.0) + 7.0
    return per_pair * m * m
