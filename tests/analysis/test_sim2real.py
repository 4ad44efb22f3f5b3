"""The simulation-to-real study's site tables and insulation score (benchmarks/study_sim2real.py)."""

import importlib.util
from pathlib import Path

import numpy as np


def _module(monkeypatch):
    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))  # as when the script runs: its folder first
    spec = importlib.util.spec_from_file_location("study_sim2real", bench / "study_sim2real.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_site_tables_parse_as_four_strong_sites_in_both_orientations(monkeypatch, tmp_path):
    from pointae.sim.barriers import read_ctcf_table

    mod = _module(monkeypatch)
    native, ins = mod.write_tables(tmp_path)
    assert len(read_ctcf_table(native)) == 0
    sites = read_ctcf_table(ins)
    assert len(sites) == 4
    assert sorted(sites["direction"].tolist()) == [-1, -1, 1, 1]
    assert (sites["occupancy"] > 0.9).all()
    assert (sites["pos"] - mod.INSERTION).between(0, 100).all()


def test_insulation_is_zero_on_a_line_and_positive_across_a_gap(monkeypatch):
    mod = _module(monkeypatch)
    line = np.zeros((2, 20, 3))
    line[..., 0] = np.arange(20)
    assert np.allclose(mod.insulation(line, 10, 4), 0.0, atol=1e-9)
    gap = line.copy()
    gap[:, 10:, 0] += 5.0  # the two halves pulled apart at the site
    assert (mod.insulation(gap, 10, 4) > 0.3).all()
    gap[0, 9] = np.nan  # missing loci: observed pairs only, still finite
    assert np.isfinite(mod.insulation(gap, 10, 4)).all()
