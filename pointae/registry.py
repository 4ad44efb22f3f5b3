"""Every name pointae offers a choice of, in one registry per kind of name.

A :class:`Registry` maps a name to an object. Built-in entries are declared here by *import path*
(``"module:attr"``) together with the few facts other code needs before importing them (which
representation an encoder reads, whether a format can be written, a one-line help), so
:meth:`Registry.names` lists them without importing torch: ``pointae --help`` stays instant.
The object is imported on first :meth:`Registry.get`. Plugins and tests add their own entries
with :meth:`Registry.register` (a decorator) or :meth:`Registry.add`; the configuration, the
builders and the CLI choices all read the registries when they run, so a name registered after
import is accepted everywhere.

Examples
--------
>>> from pointae import registry
>>> registry.representations.names()
('map', 'graph', 'voxel')
>>> registry.encoders.meta("graph")["repr"]
'graph'
>>> registry.formats.names(write=True)
('bintu', 'fofct', 'csv', 'h5', 'pdb')
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pointae.errors import PointaeError

_MISSING = object()


class UnknownNameError(PointaeError, KeyError):
    """An unknown name; a :class:`PointaeError` (one clear CLI line) and a ``KeyError``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def resolve(path: str) -> Any:
    """``"pkg.mod:attr"`` -> the attribute (``"pkg.mod"`` -> the module); ``attr[key]`` indexes."""
    mod, _, attr = path.partition(":")
    obj: Any = importlib.import_module(mod)
    if not attr:
        return obj
    key = None
    if attr.endswith("]") and "[" in attr:
        attr, key = attr[:-1].split("[", 1)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj[key] if key is not None else obj


def _path_of(obj: Any) -> str | None:
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{mod}:{qual}" if mod and qual else None


class Registry(Mapping):
    """Names of one kind -> objects (imported lazily for entries declared by path).

    Parameters
    ----------
    kind
        What a name names, for messages (``"encoder"``, ``"task"``, ...).
    builtins
        Light modules (no torch, numpy) that register more entries when imported; imported on
        the first lookup or listing.
    check
        Optional ``check(name, obj, meta)`` run when an entry is added (raise
        :class:`PointaeError` to refuse it).

    Notes
    -----
    A registry is a read-only ``Mapping`` (``name in reg``, ``reg[name]``, ``list(reg)``,
    ``reg.get(name)``), so code written against the old ``dict`` constants keeps working.
    Names are listed in registration order.
    """

    def __init__(
        self,
        kind: str,
        builtins: tuple[str, ...] = (),
        check: Callable[[str, Any, dict], None] | None = None,
    ):
        self.kind = kind
        self._builtins = tuple(builtins)
        self._loaded = not self._builtins
        self._check = check
        self._entries: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ adding
    def add(self, name: str, obj: Any = _MISSING, *, path: str | None = None, **meta: Any) -> None:
        """Register ``obj`` (or the lazy import ``path``, ``"module:attr"``) under ``name``.

        ``meta`` holds facts about the entry readable without importing it (see
        :meth:`meta`). Registering a name twice is refused unless it is the same object (or
        the object a lazy entry's path points to: a built-in module that registers itself).
        """
        if not isinstance(name, str) or not name or name != name.strip():
            raise PointaeError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if (obj is _MISSING) == (path is None):
            raise PointaeError(f"{self.kind} {name!r}: give exactly one of an object or path=")
        old = self._entries.get(name)
        if old is not None:
            same = (obj is not _MISSING and old.get("obj", _MISSING) is obj) or (
                obj is not _MISSING and "obj" not in old and old["path"] == _path_of(obj)
            )
            same = same or (path is not None and old.get("path") == path)
            if not same:
                what = old.get("path") or _path_of(old.get("obj")) or repr(old.get("obj"))
                raise PointaeError(f"{self.kind} name {name!r} is already registered (by {what})")
            meta = {**old["meta"], **meta}
        if self._check is not None and obj is not _MISSING:
            self._check(name, obj, meta)
        entry: dict[str, Any] = {"meta": dict(meta)}
        if obj is not _MISSING:
            entry["obj"] = obj
        if path is not None or (old is not None and "path" in old):
            entry["path"] = path if path is not None else old["path"]
        self._entries[name] = entry

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator: ``@reg.register("name", key=value)`` registers the decorated object."""

        def deco(obj: Any) -> Any:
            self.add(name, obj, **meta)
            return obj

        return deco

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests and plugins that clean up after themselves)."""
        self._entries.pop(self.check(name), None)

    def pop(self, name: str, default: Any = _MISSING) -> Any:
        """Remove ``name`` and return its object (``dict.pop`` of the old constants)."""
        if name not in self and default is not _MISSING:
            return default
        obj = self.get(name)
        self.remove(name)
        return obj

    # ------------------------------------------------------------------ looking up
    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for mod in self._builtins:
                importlib.import_module(mod)

    def names(self, **where: Any) -> tuple[str, ...]:
        """Registered names in order; ``where`` keeps those whose :meth:`meta` matches."""
        self._load()
        return tuple(
            n for n, e in self._entries.items() if all(e["meta"].get(k) == v for k, v in where.items())
        )

    def where(self, **meta: Any) -> NameView:
        """A live sequence of the names whose :meth:`meta` matches (for derived constants)."""
        return NameView(self, meta)

    def check(self, name: str, what: str | None = None) -> str:
        """``name`` if registered, else a one-line :class:`UnknownNameError` listing the known ones."""
        self._load()
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {what or self.kind} {name!r}; known: {', '.join(self._entries) or '(none)'}"
            )
        return name

    def meta(self, name: str) -> dict[str, Any]:
        """Facts declared with the entry (no import)."""
        return self._entries[self.check(name)]["meta"]

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The object registered as ``name`` (imported on first use); ``default`` if unknown."""
        self._load()
        entry = self._entries.get(name)
        if entry is None:
            if default is not _MISSING:
                return default
            self.check(name)
        if "obj" not in entry:
            obj = resolve(entry["path"])
            if ":" not in entry["path"]:  # a module: sys.modules is its cache (reloads, test fakes)
                return obj
            entry = self._entries[name]  # importing may have registered the object itself
            if "obj" not in entry:
                if self._check is not None:
                    self._check(name, obj, entry["meta"])
                entry["obj"] = obj
        return entry["obj"]

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


class NameView(Sequence):
    """The names of a registry whose meta matches, read at each use (``in``, ``for``, ``len``)."""

    def __init__(self, reg: Registry, where: dict[str, Any]):
        self._reg, self._where = reg, dict(where)

    def __getitem__(self, i):
        return self._reg.names(**self._where)[i]

    def __len__(self) -> int:
        return len(self._reg.names(**self._where))

    def __contains__(self, name: object) -> bool:
        return name in self._reg.names(**self._where)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, list, NameView)) else other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


# =============================================================================== the registries
def _check_encoder(name: str, cls: Any, meta: dict) -> None:
    rep = getattr(cls, "repr", None)
    if rep not in representations:
        raise PointaeError(
            f"encoder {getattr(cls, '__name__', name)} needs a class attribute repr naming a "
            f"representation ({', '.join(representations.names())}), got {rep!r}"
        )
    if meta.get("repr", rep) != rep:
        raise PointaeError(f"encoder {name!r} is declared for {meta['repr']!r} but its class reads {rep!r}")
    meta["repr"] = rep
    meta.setdefault("decoder", getattr(cls, "default_decoder", "map"))


#: model inputs built from coordinates (:mod:`pointae.data.reprs`); ``encoder`` is the default
#: encoder of the representation
representations = Registry("representation")
representations.add("map", path="pointae.data.reprs:MapRepr", encoder="map", help="distance maps")
representations.add("graph", path="pointae.data.graph:GraphRepr", encoder="graph", help="dense chain graphs")
representations.add("voxel", path="pointae.data.voxel:VoxelRepr", encoder="voxel", help="voxel grids")

#: encoders: ``repr`` (the representation they read), ``decoder`` (their default decoder)
encoders = Registry("encoder", check=_check_encoder)
encoders.add("map", path="pointae.models.encoders.map_cnn:MapCNN", repr="map", decoder="map")
encoders.add("graph", path="pointae.models.encoders.graph_gnn:GraphGNN", repr="graph", decoder="map")
encoders.add("voxel", path="pointae.models.encoders.voxel_cnn:VoxelCNN", repr="voxel", decoder="map")

#: decoders ``z -> (B, L, L)`` valid maps
decoders = Registry("decoder")
decoders.add("map", path="pointae.models.decoder:MapDecoder")
decoders.add("coord", path="pointae.models.decoder:CoordDecoder")

#: skip-path models for the tasks with ``skip_model`` (denoise, inpaint), keyed by encoder name;
#: an encoder without one trains as an autoencoder for every task
task_models = Registry("task model")
task_models.add("map", path="pointae.models.task_models:MapUNet")
task_models.add("graph", path="pointae.models.task_models:GraphPairNet")
task_models.add("voxel", path="pointae.models.task_models:VoxelSkipNet")

#: tasks (:mod:`pointae.tasks`); ``skip_model``: denoise/inpaint use the task models above
tasks = Registry("task")
tasks.add("autoencode", path="pointae.tasks.autoencode:Autoencode", skip_model=False, compare=True)
tasks.add("denoise", path="pointae.tasks.denoise:Denoise", skip_model=True, compare=True)
tasks.add("inpaint", path="pointae.tasks.inpaint:Inpaint", skip_model=True, compare=True)
tasks.add("contrast", path="pointae.tasks.contrast:Contrast", skip_model=False, compare=False)

#: pair losses ``fn(pred, target, mask[, eps])`` (:mod:`pointae.losses`); ``takes_eps``
losses = Registry("loss")
losses.add("mse", path="pointae.losses:masked_mse", takes_eps=False)
losses.add("l1", path="pointae.losses:masked_l1", takes_eps=False)
losses.add("log_mse", path="pointae.losses:masked_log_mse", takes_eps=True)
losses.add("log_l1", path="pointae.losses:masked_log_l1", takes_eps=True)

#: trace file formats: the module of :mod:`pointae.data.io` (or a plugin's) that reads/writes
#: them; ``read``/``write``: whether :func:`~pointae.data.io.read_traces` /
#: :func:`~pointae.data.io.write_traces` accept it, ``reader``/``writer``: the functions' names
#: in the module, ``options``: the reader options (:class:`~pointae.data.io.ReadOptions`) it takes
formats = Registry("format")
formats.add(
    "bintu",
    path="pointae.data.io.bintu",
    read=True,
    write=True,
    reader="read_bintu",
    writer="write_bintu",
    options=("unit",),
    help="Bintu et al. CSV",
)
formats.add(
    "fofct",
    path="pointae.data.io.fofct",
    read=True,
    write=True,
    reader="read_fofct",
    writer="write_fofct",
    options=("unit", "duplicates"),
    help="4DN FOF-CT table",
)
formats.add(
    "csv",
    path="pointae.data.io.longcsv",
    read=True,
    write=True,
    reader="read_long_csv",
    writer="write_long_csv",
    options=("unit", "duplicates"),
    help="long CSV/TSV table",
)
formats.add(
    "table",
    path="pointae.data.io.table",
    read=True,
    write=False,
    reader="read_table",
    options=("unit", "columns", "pixel_size", "duplicates"),
    help="ECSV or mapped table",
)
formats.add(
    "h5",
    path="pointae.data.io.hdf5",
    read=True,
    write=True,
    reader="read_h5",
    writer="write_h5",
    options=(),
    help="pointae HDF5",
)
formats.add(
    "pdb", path="pointae.data.io.pdb", read=False, write=True, writer="write_pdb", help="PDB structures"
)


def _plain(kind: str, *entries: str | tuple[str, str]) -> Registry:
    """A registry of plain choices (each entry is its own name): ``"name"`` or ``("name", "help")``."""
    reg = Registry(kind)
    for e in entries:
        name, text = (e, None) if isinstance(e, str) else e
        reg.add(name, name, **({} if text is None else {"help": text}))
    return reg


#: what a reader does with several spots for one (trace, locus)
duplicates = _plain(
    "duplicates policy",
    ("closest", "keep the spot closest to its chain neighbours"),
    ("first", "keep the first spot"),
    ("mean", "average the spots"),
    ("error", "stop with an error"),
)

#: coordinate units of a :class:`~pointae.Traces`
units = _plain("unit", "nm", "micron", "bead")

#: simulation presets: parameter overrides of :data:`pointae.sim.presets.DEFAULTS`
presets = Registry("preset")
for _n, _h in (
    ("wt", "loop extrusion (LEFs) stopped by directional CTCF barriers, soft excluded volume, confinement"),
    ("no-cohesin", "as wt without LEFs (cohesin/RAD21 degradation)"),
    ("no-ctcf", "as wt with LEFs but no barriers (CTCF degradation)"),
    ("tads", "no LEFs; block copolymer with attraction inside synthetic domains"),
    ("ideal", "ideal Gaussian chain: bonds only, free space"),
    ("swollen", "self-avoiding chain in good solvent (soft excluded volume), free space"),
    ("globule", "compact confined chain (density 0.5)"),
):
    presets.add(_n, path=f"pointae.sim.presets:BUILTIN_PRESETS[{_n}]", help=_h)

#: 2D layouts of an embedding (:func:`pointae.analysis.cluster.compute_layout`)
layouts = _plain("layout", "phate", "umap", "tsne", "pca")

#: the two regimes ``pointae compare`` trains each representation in
regimes = _plain(
    "regime",
    ("bottleneck", "everything passes through the latent (encoder + decoder)"),
    ("skip", "the best model for the task (skip connections for denoise/inpaint)"),
)

#: whole models with their own configuration and training (not an encoder + decoder pair); the
#: entry is the model's ``load(run)``, meta ``tasks``, ``config`` (dataclass) and ``fit`` import paths
models = Registry("model")
models.add(
    "imputer",
    path="pointae.impute.api:load_imputer",
    tasks=("inpaint",),
    config="pointae.impute.fit:ImputerRunConfig",
    fit="pointae.impute.api:fit_imputer_run",
    help="the real-data imputer (pointae.impute): distance-map CNN + stress placement",
)

#: clustering algorithms (:func:`pointae.analysis.cluster.cluster_labels`)
clusterings = _plain("clustering", "kmeans", "leiden", "agglomerative")

#: distance-map -> structure reconstructions (``pointae reconstruct --method``)
reconstructions = _plain(
    "reconstruction method", ("mds", "classical MDS"), ("smacof", "weighted SMACOF (masked pairs)")
)

#: how ``evaluate-imputation`` hides observed loci
hide_modes = _plain(
    "hide mode",
    ("random", "isolated loci"),
    ("runs", "runs of 2-4 loci"),
    ("mixed", "a mix of both"),
    ("detection", "loci drawn by the file's per-locus detection rates"),
)

#: learning-rate schedules of ``pointae train`` (``train.scheduler``)
schedulers = _plain(
    "scheduler",
    ("cosine", "linear warmup, then cosine decay"),
    ("plateau", "halve on a validation plateau"),
    ("none", "constant after warmup"),
)

#: numeric precision of the imputer's CNN
precisions = _plain("precision", "auto", "bf16", "fp32")

#: devices of the simulator
devices = _plain("device", "cpu", "cuda")

del _n, _h

__all__ = [
    "NameView",
    "Registry",
    "UnknownNameError",
    "clusterings",
    "decoders",
    "devices",
    "duplicates",
    "encoders",
    "formats",
    "hide_modes",
    "layouts",
    "losses",
    "models",
    "precisions",
    "presets",
    "reconstructions",
    "regimes",
    "resolve",
    "schedulers",
    "representations",
    "task_models",
    "tasks",
    "units",
]
