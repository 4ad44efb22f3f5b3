"""PDB export: fixed columns, statuses, CONECT records, round trip."""

from __future__ import annotations

import numpy as np
import pytest

from pointae.data.io.pdb import pdb_lines, read_pdb, write_pdb
from pointae.errors import PointaeError
from pointae.testing import tiny_traces


def _with_status(t):
    st = np.where(t.mask, "observed", "missing").astype(object)
    st[:, 3] = "imputed"
    st[:, 5] = "corrected"
    coords = t.coords.copy()
    coords[:, 3] = coords[:, 2] + 10.0  # filled loci have coordinates
    conf = np.where(st == "observed", np.nan, 0.4).astype(np.float32)
    t = t.with_coords(coords)
    t.layers = {"pointae_status": st.astype(str), "pointae_confidence": conf}
    return t


def _atoms(lines):
    return [ln for ln in lines if ln.startswith("ATOM  ")]


def test_fixed_columns_are_valid():
    t = _with_status(tiny_traces(n=3, n_loci=16, seed=1))
    lines = pdb_lines(t)
    atoms = _atoms(lines)
    assert len(atoms) == int(t.mask.sum())  # one pseudo-atom per present locus, missing omitted
    for ln in atoms:
        assert len(ln) == 80
        assert ln[12:16] == " CA " and ln[21] == "A" and ln[76:78] == " C"
        float(ln[30:38]), float(ln[38:46]), float(ln[46:54]), float(ln[54:60]), float(ln[60:66])
        assert int(ln[6:11]) == int(ln[22:26])  # serial = residue = locus index + 1
        assert ln[37] != " " and ln[45] != " " and ln[53] != " "  # numbers right-aligned
    # statuses -> residue names, occupancy, B-factor = 100 x confidence
    first = {int(ln[22:26]): ln for ln in atoms[: int(t.mask[0].sum())]}
    assert first[4][17:20] == "IMP" and float(first[4][54:60]) == 0.0 and float(first[4][60:66]) == 40.0
    assert first[6][17:20] == "COR" and float(first[6][54:60]) == 0.5
    assert first[1][17:20] == "OBS" and float(first[1][60:66]) == 100.0
    assert sum(ln.startswith("MODEL ") for ln in lines) == 3
    assert sum(ln == "ENDMDL" for ln in lines) == 3 and lines[-1] == "END"


def test_conect_follows_the_chain_but_not_across_gaps():
    t = tiny_traces(n=1, n_loci=10, seed=0)
    coords = t.coords.copy()
    coords[0, 4] = np.nan
    t = t.with_coords(coords)
    bonds = [ln for ln in pdb_lines(t) if ln.startswith("CONECT")]
    pairs = [(int(b[6:11]), int(b[11:16])) for b in bonds]
    assert pairs == [(i, i + 1) for i in range(1, 10) if i not in (4, 5)]
    assert not any(ln.startswith("MODEL") for ln in pdb_lines(t))  # single trace: no MODEL


def test_round_trip(tmp_path):
    t = _with_status(tiny_traces(n=4, n_loci=16, seed=2))
    (p,) = write_pdb(t, tmp_path / "x.pdb", source="unit test")
    back = read_pdb(p)
    assert back.unit == "nm" and list(back.trace_ids) == list(t.trace_ids)
    assert np.array_equal(back.mask, t.mask)
    assert back.loci is not None and back.loci.equals(t.loci)
    # 3 decimals of nm/10 (0.01 nm) plus float32 rounding of the absolute position
    np.testing.assert_allclose(back.coords, t.coords, atol=0.02, equal_nan=True)
    np.testing.assert_array_equal(back.layers["pointae_status"][t.mask], t.layers["pointae_status"][t.mask])
    conf = t.layers["pointae_confidence"]
    want = np.nan_to_num(conf, nan=1.0)[t.mask]
    np.testing.assert_allclose(back.layers["pointae_confidence"][t.mask], want)


def test_write_traces_dispatches_pdb_suffix(tmp_path):
    from pointae import write_traces

    t = tiny_traces(n=2, n_loci=8)
    write_traces(t, tmp_path / "a.pdb")
    assert read_pdb(tmp_path / "a.pdb").coords.shape == (2, 8, 3)


def test_one_file_per_trace(tmp_path):
    t = tiny_traces(n=3, n_loci=8)
    files = write_pdb(t, tmp_path / "s.pdb", per_trace=True)
    assert [f.name for f in files] == ["s_t0.pdb", "s_t1.pdb", "s_t2.pdb"]
    one = read_pdb(files[1])
    np.testing.assert_allclose(one.coords[0], t.coords[1], atol=0.02, equal_nan=True)


def test_scale_and_range_errors(tmp_path):
    t = tiny_traces(n=1, n_loci=8)
    far = t.coords.copy()
    far[0, 0] += 3e5  # 300 um from the rest: does not fit at 10 nm per unit
    with pytest.raises(PointaeError, match="scale"):
        pdb_lines(t.with_coords(far))
    assert _atoms(pdb_lines(t.with_coords(far), scale=0.01))
    with pytest.raises(PointaeError, match="positive"):
        pdb_lines(t, scale=-1)
    assert not (tmp_path / "x.pdb").exists()


def test_read_foreign_pdb(tmp_path):
    p = tmp_path / "f.pdb"
    p.write_text(
        "ATOM      1  N   ALA A   5       1.000   2.000   3.000  1.00  0.00           N\n"
        "ATOM      2  CA  ALA A   5       1.500   2.000   3.000  1.00  0.00           C\n"
        "ATOM      3  CA  GLY A   7       4.000   5.000   6.000  1.00  0.00           C\n"
    )
    t = read_pdb(p)
    assert t.coords.shape == (1, 3, 3) and t.mask.tolist() == [[True, False, True]]
    np.testing.assert_allclose(t.coords[0, 0], [1.5, 2.0, 3.0])
    bad = tmp_path / "bad.pdb"
    bad.write_text("ATOM      1  CA  ALA A   x       1.000   2.000   3.000\n")
    with pytest.raises(PointaeError, match="bad.pdb:1"):
        read_pdb(bad)
