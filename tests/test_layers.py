"""The package's layers (docs/architecture.md): no module imports a layer above its own.

Every ``import pointae.x`` / ``from pointae.x import ...`` in every module counts, also the lazy
ones inside functions: "lazy" keeps ``pointae --help`` fast, it does not make running back up a
layer acceptable. Same-layer imports are allowed (``viz`` draws what ``analysis`` computes).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pointae

PKG = Path(pointae.__file__).resolve().parent

# bottom to top; a module may import its own layer and the layers below
LAYERS: list[tuple[str, ...]] = [
    ("errors", "registry", "_version", "outputs", "config"),
    ("data", "baselines", "sim", "metrics", "losses", "testing"),
    ("models", "tasks"),
    ("train",),
    ("impute", "recon"),
    ("api",),
    ("analysis", "viz"),
    ("cli", "__main__"),
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _unit(module: str) -> str | None:
    """``pointae.data.io.table`` -> ``data``; a name the package root re-exports (``pointae.PointAE``)
    -> the layer of the module it comes from."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "pointae":
        return None
    lazy = getattr(pointae, "_LAZY", {})
    if len(parts) == 2 and parts[1] in lazy:
        return _unit(lazy[parts[1]])
    return parts[1]


def _imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pointae":
                out += [(f"pointae.{a.name}", node.lineno) for a in node.names]
            elif node.module.startswith("pointae."):
                out.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("pointae.")]
    return out


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        yield path, (rel.parts[0] if len(rel.parts) > 1 else rel.stem)


def test_every_package_module_has_a_layer():
    missing = {unit for _, unit in _modules() if unit not in RANK and unit != "__init__"}
    assert not missing, f"add these to LAYERS (and docs/architecture.md): {sorted(missing)}"


def test_no_module_imports_a_layer_above_its_own():
    bad = []
    for path, unit in _modules():
        if unit == "__init__":  # the package root re-exports the public API lazily
            continue
        for module, line in _imports(path):
            target = _unit(module)
            if target is None or target not in RANK:
                continue
            if RANK[target] > RANK[unit]:
                bad.append(f"{path.relative_to(PKG.parent)}:{line} ({unit}) imports {module} ({target})")
    assert not bad, "imports that run back up a layer:\n" + "\n".join(bad)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    """The checker itself: an upward import in a module is found (it can fail)."""
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from pointae.cli._app import app\n")
    assert _imports(f) == [("pointae.cli._app", 2)]
    assert RANK[_unit("pointae.cli._app")] > RANK["data"]
    assert _unit("pointae.PointAE") == "api" and _unit("pointae.read_traces") == "data"
