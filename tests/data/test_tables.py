"""Files labs actually write: label-restarting Bintu, FOF-CT v0.1 in the wild, Hi-M ECSV, Huang CSV,
SnapFISH-style TSV, mapped tables with compound keys; duplicated spots, units, exact digits."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.io import convert_file, detect_format, read_traces, write_traces
from pointae.data.io.table import ColumnMap, detect_columns
from pointae.data.qc import summarize
from pointae.errors import InputError, PointaeError

FILES = Path(__file__).parent / "files"
BINTU_LABELS = FILES / "bintu_labels_restart.csv"
FOFCT_V01 = FILES / "fofct_v0.1_chr19_3traces.csv"
HIM = FILES / "him_roi5_excerpt.ecsv"
HUANG = FILES / "huang2021_sox2_excerpt.csv"
SNAPFISH = FILES / "snapfish_style.tsv"
MAPPED = FILES / "mapped_compound_key.csv"
MAPPING = "trace=field+cell,locus=hyb,x=px_x,y=px_y,z=px_z"
runner = CliRunner()


# ----------------------------------------------------------------------------- every layout, no flags
@pytest.mark.parametrize(
    "path, fmt, shape, unit, key",
    [
        (BINTU_LABELS, "bintu", (6, 65), "nm", ["Cell cycle", "Chromosome index"]),
        (FOFCT_V01, "fofct", (3, 50), "micron", None),
        (HIM, "table", (405, 25), "micron", ["Trace_ID"]),
        (HUANG, "table", (24, 42), "nm", ["FOV_ID", "Trace_ID"]),
        (SNAPFISH, "table", (24, 41), "nm", ["cell_id"]),
    ],
)
def test_every_layout_reads_without_flags(path, fmt, shape, unit, key):
    assert detect_format(path) == fmt
    with warnings.catch_warnings():
        # the unit is stated in every layout but the SnapFISH one (guessed there, with a warning)
        warnings.simplefilter("ignore" if path == SNAPFISH else "error", UserWarning)
        t = read_traces(path)
    assert (len(t), t.n_loci) == shape
    assert t.unit == unit
    assert t.attrs.get("trace_key") == key
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output


def test_bintu_label_restart_keys_and_writes_back_identically(tmp_path):
    t = read_traces(BINTU_LABELS)
    assert t.trace_ids.tolist() == ["G1/1", "G1/2", "G1/3", "S/1", "S/2", "S/3"]
    assert t.meta["Cell cycle"].tolist() == ["G1"] * 3 + ["S"] * 3
    ref = read_traces(FILES / "bintu_small.csv")  # the first 6 traces of the Bintu file
    np.testing.assert_array_equal(t.coords, ref.coords)  # the relabelled traces of the real file
    out = tmp_path / "back.bintu.csv"
    write_traces(t, out)
    assert out.read_text().split("\n")[1:] == BINTU_LABELS.read_text().split("\n")[1:]
    # through HDF5 as well
    write_traces(t, tmp_path / "a.h5")
    write_traces(read_traces(tmp_path / "a.h5"), tmp_path / "b.bintu.csv")
    assert (tmp_path / "b.bintu.csv").read_text().split("\n")[1:] == BINTU_LABELS.read_text().split("\n")[1:]
    s = runner.invoke(app, ["info", str(BINTU_LABELS)]).output
    assert "Cell cycle + Chromosome index" in s


def test_bintu_restart_without_label_is_an_error(tmp_path):
    text = BINTU_LABELS.read_text().replace(",G1\n", "\n").replace(",S\n", "\n")
    text = text.replace(",Cell cycle\n", "\n")
    p = tmp_path / "b.csv"
    p.write_text(text)
    with pytest.raises(InputError, match="duplicated row for segment 1"):
        read_traces(p)  # never merged silently


def test_fofct_v01_in_the_wild(tmp_path):
    raw = FOFCT_V01.read_bytes()
    assert b"\r\n" in raw and b"\xde" in raw  # the quirks are in the test file
    t = read_traces(FOFCT_V01)
    assert t.attrs["encoding"] == "latin-1"
    assert t.loci["chrom"].unique().tolist() == ["19"]
    assert t.meta["cell_id"].tolist() == ["411", "328", "530"]
    assert any("ChrTracer3" in c for c in t.attrs["comments"])
    out = tmp_path / "v10.fofct.csv"
    write_traces(t, out)
    text = out.read_text()
    assert text.startswith("##FOF-CT_Version=v1.0\n##Table_Namespace=4dn_FOF-CT_core\n")
    assert "##XYZ_Unit=micron" in text and "##Columns=(Spot_ID, Trace_ID, X, Y, Z, Chrom" in text
    back = read_traces(out)
    np.testing.assert_array_equal(back.coords, t.coords)
    # observed values keep their digits
    src_rows = [r.split(",") for r in raw.decode("latin-1").replace("\r", "").split("\n") if r[:1].isdigit()]
    out_rows = [r.split(",") for r in text.split("\n") if r[:1].isdigit()]
    assert [r[2:5] for r in src_rows] == [r[2:5] for r in out_rows]


def test_fofct_rows_with_fewer_columns_than_declared(tmp_path):
    lines = FOFCT_V01.read_bytes().decode("latin-1").replace("\r\n", "\n").split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("5,1,"))
    lines[i] = lines[i].rsplit(",", 1)[0]  # Cell_ID left out
    p = tmp_path / "short.csv"
    p.write_text("\n".join(lines))
    t = read_traces(p)
    np.testing.assert_array_equal(t.coords, read_traces(FOFCT_V01).coords)
    lines[i] = lines[i].rsplit(",", 1)[0]  # Chrom_End left out too: a required column
    p.write_text("\n".join(lines))
    with pytest.raises(InputError, match="expected 8 fields, found 7"):
        read_traces(p)


def test_fofct_spec_example_with_overlapping_loci():
    t = read_traces(FILES / "fofct_v1.0_spec_example.csv")  # the 4DN spec's core.example.csv
    assert (len(t), t.n_loci, t.unit) == (2, 5, "micron")  # the union of two overlapping locus sets
    assert t.loci["start"].tolist() == [1, 2, 1001, 1002, 2001]
    assert t.mask.sum(axis=1).tolist() == [3, 2]


# ----------------------------------------------------------------------------- ECSV, duplicates
def test_ecsv_header_types_unit_and_duplicates():
    t = read_traces(HIM)
    assert t.unit == "micron" and "xyz_unit=micron" in t.attrs["unit_source"]
    assert t.attrs["genome_assembly"] == "mm10"
    assert t.loci is None and t.attrs["locus_index"] == sorted(t.attrs["locus_index"])
    dup = t.attrs["duplicates"]
    raw = pd.read_csv(HIM, comment="#", sep=" ")
    groups = raw.groupby(["Trace_ID", "Barcode #"]).size()
    assert dup == {
        "policy": "closest",
        "spots": int((groups > 1).sum()),
        "rows_dropped": int((groups - 1).sum()),
    }
    assert dup["spots"] > 10
    assert int(t.mask.sum()) == len(groups)
    # every policy keeps one spot per (trace, barcode); first/closest pick one of the candidates
    first = read_traces(HIM, duplicates="first")
    mean = read_traces(HIM, duplicates="mean")
    assert (first.mask == t.mask).all() and (mean.mask == t.mask).all()
    differ = ~np.all(first.coords == t.coords, axis=-1) & t.mask
    assert differ.sum() > 0  # closest chose another candidate than the first for some spots
    with pytest.raises(InputError, match="duplicated row for locus"):
        read_traces(HIM, duplicates="error")


def test_closest_policy_picks_the_spot_near_its_neighbours(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(
        "Trace_ID,Barcode,x,y,z\n"
        "a,1,0,0,0\na,2,500,0,0\na,2,100,0,0\na,3,200,0,0\n"  # 100 fits between 0 and 200
        "b,1,0,0,0\nb,2,100,0,0\nb,2,900,0,0\nb,3,200,0,0\n"
    )
    t = read_traces(p, unit="nm")
    assert t.coords[:, 1, 0].tolist() == [100, 100]
    assert t.attrs["duplicates"] == {"policy": "closest", "spots": 2, "rows_dropped": 2}
    assert read_traces(p, unit="nm", duplicates="first").coords[:, 1, 0].tolist() == [500, 100]
    assert read_traces(p, unit="nm", duplicates="mean").coords[:, 1, 0].tolist() == [300, 500]
    s = summarize(t)
    assert s["duplicates"]["spots"] == 2


# ----------------------------------------------------------------------------- Huang CSV, TSV
def test_huang_csv_key_allele_loci_and_detection():
    t = read_traces(HUANG)
    assert t.attrs["trace_key"] == ["FOV_ID", "Trace_ID"]
    assert t.meta["allele"].value_counts().to_dict() == {"129": 12, "CAST": 12}
    assert t.loci["chrom"].unique().tolist() == ["chr3"]
    starts = t.loci["start"].to_numpy()
    assert (np.diff(starts) >= 0).all() and t.loci.iloc[0]["start"] == 34_601_078
    zero = t.loci[t.loci["start"] == t.loci["end"]]
    assert len(zero) == 1  # the zero-length insertion-site probe is one locus
    raw = pd.read_csv(HUANG)
    assert int(t.mask.sum()) == int(raw["x-nm"].notna().sum())
    s = summarize(t)
    det = np.array(s["detection_per_locus"])
    assert det.min() < 0.5 < det.max()  # missingness differs between loci
    assert s["labels"]["allele"] == {"129": 12, "CAST": 12}
    assert "column names" in s["unit_source"]


def test_snapfish_tsv_absent_rows_matches_huang():
    with pytest.warns(UserWarning, match="median neighbour distance"):
        t = read_traces(SNAPFISH)  # no unit anywhere: guessed (nm) with a warning
    h = read_traces(HUANG)
    assert t.unit == "nm" and "guessed" in t.attrs["unit_source"]
    assert t.attrs["layout"] == "tsv"
    # absent rows: loci are the positions seen (start only); same observed coordinates as Huang
    # (the TSV leaves out Huang's zero-length probe, whose start is the next bin's)
    h = h[np.arange(len(h))]
    zero = (h.loci["start"] == h.loci["end"]).to_numpy()
    h.coords[:, zero] = np.nan
    assert int(t.mask.sum()) == int(h.mask.sum())
    hs = {
        (tid.replace("/", "_"), s): tuple(c)
        for tid, row in zip(h.trace_ids, h.coords)
        for s, c in zip(h.loci["start"], row)
        if not np.isnan(c[0])
    }
    ts = {(tid, s): tuple(c) for tid, row in zip(t.trace_ids, t.coords) for s, c in zip(t.loci["start"], row)
          if not np.isnan(c[0])}
    assert hs == ts
    assert read_traces(SNAPFISH, unit="nm").attrs["unit_source"] == "--unit"


def test_two_layouts_fit_asks_for_columns(tmp_path):
    p = tmp_path / "amb.csv"
    p.write_text("trace,cell_id,locus,segment,x,y,z\na,1,1,1,0,0,0\n")
    with pytest.raises(InputError, match="could all be the locus.*--columns"):
        read_traces(p)
    t = read_traces(p, columns="trace=trace,locus=segment,x=x,y=y,z=z", unit="nm")
    assert len(t) == 1


# ----------------------------------------------------------------------------- mapped tables
def test_mapped_table_compound_key_pixels(tmp_path):
    with pytest.raises(PointaeError, match="pixel-size"):
        read_traces(MAPPED, columns=MAPPING, unit="pixel")
    t = read_traces(MAPPED, columns=MAPPING, unit="pixel", pixel_size=100)
    ref = read_traces(FILES / "bintu_small.csv")  # the first 6 traces of the Bintu file
    assert t.trace_ids.tolist() == ["1/1", "1/2", "1/3", "2/1", "2/2", "2/3"]
    assert t.meta["field"].tolist() == ["1", "1", "1", "2", "2", "2"]
    assert t.attrs["locus_index"] == list(range(101, 166))
    np.testing.assert_allclose(t.coords, ref.coords, rtol=1e-6)
    assert t.unit == "nm" and t.attrs["pixel_size_nm"] == 100


def test_mapping_yaml_saved_and_reused(tmp_path):
    y = tmp_path / "map.yaml"
    r = runner.invoke(
        app,
        ["info", str(MAPPED), "--columns", MAPPING, "--unit", "micron", "--save-columns", str(y), "--json"],
    )
    assert r.exit_code == 0, r.output
    assert yaml.safe_load(y.read_text()) == {
        "trace": ["field", "cell"],
        "x": "px_x",
        "y": "px_y",
        "z": "px_z",
        "locus": "hyb",
    }
    a = read_traces(MAPPED, columns=MAPPING, unit="micron")
    b = read_traces(MAPPED, columns=str(y), unit="micron")
    np.testing.assert_array_equal(a.coords, b.coords)
    out = tmp_path / "m.h5"
    r = runner.invoke(app, ["convert", str(MAPPED), str(out), "--columns", str(y), "--unit", "micron"])
    assert r.exit_code == 0, r.output
    assert read_traces(out).attrs["trace_key"] == ["field", "cell"]
    assert ColumnMap.parse(MAPPING) == ColumnMap.load(y)


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("trace=field,x=px_x,y=px_y", "give z"),
        ("trace=field,x=px_x,y=px_y,z=px_z,colour=c", "unknown role"),
        ("trace=field,x=px_x,y=px_y,z=nope,locus=hyb", "'nope'"),
        ("trace field", "expected role=column"),
    ],
)
def test_bad_mappings_are_one_line_errors(spec, problem):
    r = runner.invoke(app, ["info", str(MAPPED), "--columns", spec])
    assert r.exit_code == 1 and problem in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_option_for_a_format_without_it():
    with pytest.raises(PointaeError, match="--duplicates does not apply to bintu"):
        read_traces(BINTU_LABELS, duplicates="first")


def test_detect_columns_patterns():
    m = detect_columns(["chr", "cell_id", "pos", "x", "y", "z"])
    assert (m.trace, m.start, m.chrom, m.x) == (("cell_id",), "pos", "chr", "x")
    m = detect_columns(["Trace_ID", "x (µm)", "y (µm)", "z (µm)", "Barcode #"])
    assert m.locus == "Barcode #" and m.x == "x (µm)"
    assert detect_columns(["a", "b", "c"]) is None


# ----------------------------------------------------------------------------- exact digits in files
def _observed_strings(rows, cols):
    return [tuple(r[c] for c in cols) for r in rows if r[cols[0]] not in ("", "nan")]


def test_impute_keeps_bintu_digits_in_the_output_file(tmp_path):
    out = tmp_path / "imp.bintu.csv"
    r = runner.invoke(app, ["impute", str(BINTU_LABELS), "-o", str(out)])
    assert r.exit_code == 0, r.output
    a = list(csv.DictReader(BINTU_LABELS.read_text().split("\n", 1)[1].splitlines()))
    b = list(csv.DictReader(out.read_text().split("\n", 1)[1].splitlines()))
    assert len(a) == len(b)
    obs = [i for i, row in enumerate(a) if row["X"] != "nan"]
    assert len(obs) < len(a)  # some spots were imputed
    assert [tuple(a[i][k] for k in "ZXY") for i in obs] == [tuple(b[i][k] for k in "ZXY") for i in obs]
    assert all(b[i]["pointae_status"] == "observed" for i in obs)
    assert all(b[i]["X"] != "nan" for i in range(len(b)))


def test_impute_keeps_huang_digits_in_the_output_file(tmp_path):
    out = tmp_path / "imp.fofct.csv"
    r = runner.invoke(app, ["impute", str(HUANG), "-o", str(out)])
    assert r.exit_code == 0, r.output
    src = {
        (f"{row['FOV_ID']}/{row['Trace_ID']}", row["start"], row["stop"]): (row["x-nm"], row["y-nm"], row["z-nm"])
        for row in csv.DictReader(HUANG.open())
        if row["x-nm"]
    }
    got = {}
    for line in out.read_text().splitlines():
        if line.startswith("#"):
            continue
        f = line.split(",")
        got[(f[1], f[6], f[7])] = (f[2], f[3], f[4])
    assert len(got) > len(src)  # imputed spots were added
    assert {k: got[k] for k in src} == src  # 16-17 significant digits kept, not float32
    h5 = tmp_path / "h.h5"
    convert_file(HUANG, h5)
    back = tmp_path / "h.fofct.csv"
    convert_file(h5, back)
    np.testing.assert_array_equal(read_traces(back).exact_coords(), read_traces(HUANG).exact_coords())


def test_ecsv_float32_digits_kept(tmp_path):
    out = tmp_path / "him.fofct.csv"
    write_traces(read_traces(HIM, duplicates="first"), out)
    raw = pd.read_csv(HIM, comment="#", sep=" ", dtype=str).drop_duplicates(["Trace_ID", "Barcode #"])
    src = {(r["Trace_ID"], r["x"], r["y"], r["z"]) for _, r in raw.iterrows()}
    got = set()
    for line in out.read_text().splitlines():
        if not line.startswith("#"):
            f = line.split(",")
            got.add((f[1], f[2], f[3], f[4]))
    assert got == src


def test_cli_reader_option_choices_match_the_library():
    from pointae.cli._read import DUPLICATE_NAMES, READ_FORMAT_NAMES
    from pointae.data.io import READ_FORMATS
    from pointae.data.io._common import DUPLICATE_POLICIES

    assert set(READ_FORMAT_NAMES) == set(READ_FORMATS)
    assert set(DUPLICATE_NAMES) == set(DUPLICATE_POLICIES)


def test_impute_a_mapped_table_to_fofct(tmp_path):
    out = tmp_path / "m.fofct.csv"
    args = ["impute", str(MAPPED), "-o", str(out), "--columns", MAPPING, "--unit", "pixel", "--pixel-size", "100"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    t = read_traces(out)
    assert t.mask.all() and t.trace_ids.tolist()[:2] == ["1/1", "1/2"]
    assert t.attrs["pixel_size_nm"] == 100
