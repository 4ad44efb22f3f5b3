"""Package-level invariants: public API resolves, the CLI imports no heavy library up front."""

from __future__ import annotations

import subprocess
import sys

import pointae


def test_every_public_name_resolves():
    for name in pointae.__all__:
        assert getattr(pointae, name) is not None, name


def test_cli_import_is_light():
    code = (
        "import sys, pointae.cli; "
        "heavy = [m for m in ('torch', 'lightning', 'torch_geometric', 'open3d', 'phate', 'anndata', "
        "'matplotlib', 'h5py') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"pointae.cli imports heavy modules at start: {out.stdout}"


def test_help_lists_every_command():
    from typer.testing import CliRunner

    from pointae.cli import app

    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in (
        "info",
        "convert",
        "simulate",
        "train",
        "embed",
        "cluster",
        "compare",
        "demo",
        "impute",
        "evaluate-imputation",
        "reconstruct",
        "view",
        "export-pdb",
    ):
        assert cmd in res.output, cmd
