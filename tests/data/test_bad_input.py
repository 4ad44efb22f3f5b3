"""Every kind of bad input gives one clear error: file, line or trace, problem; no traceback,
non-zero exit, no partial output file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.io import read_traces, write_traces
from pointae.errors import InputError
from pointae.testing import tiny_traces

FILES = Path(__file__).parent / "files"
BINTU = (FILES / "bintu_small.csv").read_text()
FOFCT = (FILES / "fofct_small.fofct.csv").read_text()
FOF_HEAD = (
    "##FOF-CT_version=v0.1\n##Table_namespace=4dn_FOF-CT_core\n##XYZ_unit=nm\n"
    "##columns=(Spot_ID, Trace_ID, X, Y, Z, Chrom, Chrom_Start, Chrom_End)\n"
)
CSV_HEAD = "trace_id,locus,x,y,z\n"


def _replace_line(text: str, lineno: int, new: str) -> str:
    lines = text.split("\n")
    lines[lineno - 1] = new
    return "\n".join(lines)


def _h5_bytes(tmp_path: Path) -> bytes:
    p = tmp_path / "_src.h5"
    write_traces(tiny_traces(n=50, n_loci=10), p)
    data = p.read_bytes()
    p.unlink()
    return data


# name -> (file content (str, bytes or callable(tmp_path)), expected problem, expected line, expected trace)
CASES = {
    "bintu_truncated_mid_line": (BINTU[: BINTU.rindex("\n", 0, -1) + 8], "truncated", 392, None),
    "bintu_truncated_whole_trace_rows": (
        "\n".join(BINTU.split("\n")[:-20]) + "\n",
        "inconsistent locus sets",
        None,
        "6",
    ),
    "fofct_truncated": (FOFCT[: len(FOFCT) - 30], "truncated", FOFCT.count("\n"), None),
    "h5_truncated": (lambda tmp: _h5_bytes(tmp)[:3000], "truncated or damaged HDF5 file", None, None),
    "bintu_missing_column": (BINTU.replace("Z,X,Y,", "Z,X,W,"), "missing column(s) Y", 2, None),
    "fofct_missing_column": (
        FOF_HEAD.replace(", Chrom_End", "") + "1,a,1,2,3,chr1,0\n",
        "missing column(s) Chrom_End",
        4,
        None,
    ),
    "csv_missing_column": ("trace_id,locus,x,y\nt,0,1,2\n", "missing column(s) z", 1, None),
    "fofct_extra_field_every_row": (
        FOF_HEAD + "1,a,1,2,3,chr1,0,10,x\n2,a,1,2,3,chr1,10,20,y\n",
        "this row has 9 fields but the header names 8 columns",
        5,
        None,
    ),
    "csv_extra_field_every_row": (CSV_HEAD + "t,0,1,2,3,9\n", "has 6 fields", 2, None),
    "wrong_columns": ("a,b,c\n1,2,3\n", "cannot detect the format", 1, None),
    "too_many_fields": (CSV_HEAD + "t,0,1,2,3\nt,1,1,2,3,4\n", "malformed table", 3, None),
    "bintu_non_numeric": (
        _replace_line(BINTU, 10, "1,8,12x,5,6,G1,100"),
        "non-numeric value '12x'",
        10,
        None,
    ),
    "fofct_non_numeric": (FOF_HEAD + "1,a,1,2,3,chr1,0,10\n2,a,1,two,3,chr1,10,20\n", "non-numeric", 6, None),
    "csv_non_numeric": (
        CSV_HEAD + "t,0,1,2,3\nt,1,1,2,--\n",
        "non-numeric value '--' in column 'z'",
        3,
        None,
    ),
    "bintu_duplicated": (_replace_line(BINTU, 5, "1,2,1,2,3,G1,100"), "duplicated row for segment 2", 5, "1"),
    "bintu_inconsistent_loci": (
        "\n".join(line for line in BINTU.split("\n") if not line.startswith("3,7,")),
        "inconsistent locus sets",
        None,
        "3",
    ),
    "fofct_other_chromosome": (
        FOF_HEAD + "1,a,1,2,3,chr1,0,10\n2,b,1,2,3,chr2,0,10\n",
        "inconsistent locus sets",
        None,
        "b",
    ),
    "csv_inconsistent_loci": (
        "trace_id,locus,x,y,z,chrom,start,end\nt,0,1,2,3,chr1,0,10\nu,0,1,2,3,chr1,20,30\n",
        "inconsistent locus sets",
        3,
        None,
    ),
    "empty_file": ("", "empty file", None, None),
    "blank_file": ("\n\n  \n", "empty file", None, None),
    "header_only": (CSV_HEAD, "no rows", 1, None),
    "fofct_unknown_unit": (
        FOF_HEAD.replace("=nm", "=furlong") + "1,a,1,2,3,chr1,0,10\n",
        "unknown unit",
        3,
        None,
    ),
    "csv_unknown_unit": ("#unit=parsec\n" + CSV_HEAD + "t,0,1,2,3\n", "unknown unit 'parsec'", 1, None),
    "binary_garbage": (b"\x00\xff\xfe" * 100, "not a UTF-8 text file", None, None),
    "fofct_attrs_list": (
        FOF_HEAD.replace("##columns", "#pointae_attrs=[1, 2]\n##columns") + "1,a,1,2,3,chr1,0,10\n",
        "must hold a JSON object",
        4,
        None,
    ),
    "csv_attrs_list": ("#attrs=[1]\n" + CSV_HEAD + "t,0,1,2,3\n", "must hold a JSON object", 1, None),
    "fofct_short_required": (FOF_HEAD + "1,a,1,2,3,chr1,0\n", "expected 8 fields, found 7", 5, None),
    "site_table": ("chrom\tstart\tend\tfc\nchr1\t10\t20\t3.5\n", "a genomic site table", 1, None),
    "table_two_x_columns": (
        "cell_id,barcode,x,y,z,x_um\nt,1,1,2,3,4\n",
        "could all be the x coordinate",
        None,
        None,
    ),
    "table_unmapped_column": (
        "cell,x,y,z\nc,1,2,3\n",
        "cannot detect the format",
        1,
        None,
    ),
}

# several spots for one (trace, locus): counted by default (closest), an error with duplicates="error"
DUPLICATES = {
    "fofct": (
        FOF_HEAD + "1,a,1,2,3,chr1,0,10\n2,a,1,2,3,chr1,10,20\n3,a,4,5,6,chr1,0,10\n",
        "duplicated row for locus chr1:0-10",
        7,
        "a",
    ),
    "csv": (CSV_HEAD + "t,0,1,2,3\nu,0,1,2,3\nt,0,1,2,3\n", "duplicated row for locus 0", 4, "t"),
}


@pytest.mark.parametrize("name", sorted(DUPLICATES))
def test_duplicated_spots_policy(tmp_path, name):
    content, problem, line, trace = DUPLICATES[name]
    p = tmp_path / f"{name}.dat"
    p.write_text(content)
    with pytest.raises(InputError) as ei:
        read_traces(p, duplicates="error")
    assert problem in ei.value.problem and ei.value.line == line and ei.value.trace == trace
    t = read_traces(p)  # default: the spot closest to its chain neighbours, counted
    assert t.attrs["duplicates"] == {"policy": "closest", "spots": 1, "rows_dropped": 1}
    first = read_traces(p, duplicates="first")
    mean = read_traces(p, duplicates="mean")
    i = list(t.meta["trace_id"]).index(trace)
    assert first.coords[i, 0].tolist() == [1, 2, 3]
    assert mean.coords[i, 0].tolist() == ([2.5, 3.5, 4.5] if name == "fofct" else [1, 2, 3])
    result = CliRunner().invoke(app, ["info", str(p), "--duplicates", "error"])
    assert result.exit_code == 1 and "duplicated row" in result.stderr



def _make(tmp_path: Path, name: str) -> Path:
    content = CASES[name][0]
    if callable(content):
        content = content(tmp_path)
    p = tmp_path / f"{name}.dat"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


@pytest.mark.parametrize("name", sorted(CASES))
def test_library_raises_located_input_error(tmp_path, name):
    p = _make(tmp_path, name)
    _, problem, line, trace = CASES[name]
    with pytest.raises(InputError) as ei:
        read_traces(p)
    err = ei.value
    assert err.path == str(p)
    assert problem in err.problem, str(err)
    assert err.line == line, str(err)
    assert err.trace == trace, str(err)
    msg = str(err)
    assert msg.startswith(str(p)) and "\n" not in msg


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_traces(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_traces(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unknown unit"):
        read_traces(FILES / "bintu_small.csv", format="csv", unit="lightyear")


def test_h5_with_unknown_unit(tmp_path):
    import h5py

    p = tmp_path / "u.h5"
    write_traces(tiny_traces(n=3, n_loci=4), p)
    with h5py.File(p, "a") as f:
        f.attrs["unit"] = "furlong"
    with pytest.raises(InputError, match=r"u\.h5: unknown unit 'furlong'"):
        read_traces(p)
    with pytest.raises(InputError, match="unknown unit"):
        read_traces(FILES / "bintu_small.csv", unit="furlong")


def _assert_clean_failure(result, path) -> None:
    assert result.exit_code != 0
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output and "Traceback" not in err
    assert err.startswith("error: ") and str(path) in err


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_one_line_no_partial_output(tmp_path, name):
    p = _make(tmp_path, name)
    runner = CliRunner()
    _assert_clean_failure(runner.invoke(app, ["info", str(p)]), p)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for target in ("o.h5", "o.fofct.csv", "o.csv"):
        _assert_clean_failure(runner.invoke(app, ["convert", str(p), str(out_dir / target)]), p)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("kind", ["directory", "missing"])
def test_cli_directory_and_missing(tmp_path, kind):
    p = tmp_path if kind == "directory" else tmp_path / "nope.csv"
    runner = CliRunner()
    _assert_clean_failure(runner.invoke(app, ["info", str(p)]), p)
    out = tmp_path / "o.h5"
    _assert_clean_failure(runner.invoke(app, ["convert", str(p), str(out)]), p)
    assert not out.exists()


def test_cli_failed_write_leaves_no_file(tmp_path):
    # a trace set that cannot be written as Bintu (bead units): error, and no output file
    src = tmp_path / "b.h5"
    t = tiny_traces(n=3, n_loci=4)
    write_traces(type(t)(t.coords, unit="bead"), src)
    out = tmp_path / "o.bintu.csv"
    result = CliRunner().invoke(app, ["convert", str(src), str(out)])
    assert result.exit_code == 1 and "bead" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]
