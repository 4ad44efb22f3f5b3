"""Streaming text readers: iter_traces yields whole traces on the file's locus set, the same as
reading the file whole; errors keep their file line; convert to HDF5 streams."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pointae.data.io import convert_file, iter_traces, read_traces
from pointae.data.traces import Traces
from pointae.errors import InputError

FILES = Path(__file__).parent / "files"
CASES = {
    "bintu_labels_restart.csv": {},
    "bintu_small.csv": {},
    "fofct_small.fofct.csv": {},
    "fofct_v0.1_chr19_3traces.csv": {},
    "him_roi5_excerpt.ecsv": {},
    "huang2021_sox2_excerpt.csv": {},
    "snapfish_style.tsv": {"unit": "nm"},
    "mapped_compound_key.csv": {"columns": "trace=field+cell,locus=hyb,x=px_x,y=px_y,z=px_z", "unit": "micron"},
}


def assert_same(a: Traces, b: Traces) -> None:
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.exact_coords(), b.exact_coords())
    assert a.trace_ids.tolist() == b.trace_ids.tolist()
    pd.testing.assert_frame_equal(a.meta.astype(str), b.meta.astype(str))
    if a.loci is None:
        assert b.loci is None
    else:
        pd.testing.assert_frame_equal(a.loci, b.loci)
    assert sorted(a.layers) == sorted(b.layers)
    assert a.unit == b.unit


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("chunk", [1, 5])
def test_chunks_equal_the_whole_file(name, chunk):
    kw = CASES[name]
    whole = read_traces(FILES / name, **kw)
    parts = list(iter_traces(FILES / name, chunk_size=chunk, **kw))
    assert all(len(p) <= chunk for p in parts) and len(parts) == -(-len(whole) // chunk)
    assert all(p.n_loci == whole.n_loci for p in parts)
    assert_same(whole, Traces.concat(parts, unique_ids=False))


def test_error_in_a_later_chunk_names_the_file_line(tmp_path):
    lines = (FILES / "huang2021_sox2_excerpt.csv").read_text().split("\n")
    bad = next(i for i in range(700, 800) if lines[i].split(",")[2])
    lines[bad] = ",".join([*lines[bad].split(",")[:2], "12x", *lines[bad].split(",")[3:]])
    p = tmp_path / "h.csv"
    p.write_text("\n".join(lines))
    with pytest.raises(InputError) as whole:
        read_traces(p)
    with pytest.raises(InputError) as streamed:
        list(iter_traces(p, chunk_size=2))
    assert whole.value.line == streamed.value.line == bad + 1
    assert "non-numeric value '12x'" in streamed.value.problem


def test_trace_rows_apart_is_an_error_when_streaming(tmp_path):
    text = (FILES / "fofct_small.fofct.csv").read_text().split("\n")
    body = [i for i, line in enumerate(text) if line[:1].isdigit()]
    first_trace_row = text[body[0]]
    text.append(first_trace_row.replace(",18627714,18657714,", ",1,2,", 1))  # trace 1 again at the end
    p = tmp_path / "f.fofct.csv"
    p.write_text("\n".join(text) + "\n")
    read_traces(p)  # read whole: fine (absent rows)
    with pytest.raises(InputError, match="not together"):
        list(iter_traces(p, chunk_size=2))


def test_convert_text_to_h5_streams(tmp_path, monkeypatch):
    import pointae.data.io as io_mod

    calls = []
    real = io_mod.iter_traces

    def spy(*a, **k):
        calls.append(k.get("chunk_size"))
        return real(*a, **k)

    monkeypatch.setattr(io_mod, "iter_traces", spy)
    monkeypatch.setattr(io_mod, "read_traces", lambda *a, **k: pytest.fail("read whole"))
    src = FILES / "huang2021_sox2_excerpt.csv"
    n, n_loci = convert_file(src, tmp_path / "h.h5")
    assert calls and (n, n_loci) == (24, 42)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same(read_traces(src), read_traces(tmp_path / "h.h5"))


def test_info_streams_big_text_files_with_the_same_summary(monkeypatch):
    import pointae.data.qc as qc

    for name in ("him_roi5_excerpt.ecsv", "huang2021_sox2_excerpt.csv", "bintu_labels_restart.csv"):
        whole = qc.summarize_file(FILES / name)
        monkeypatch.setattr(qc, "STREAM_BYTES", 0)
        streamed = qc.summarize_file(FILES / name, chunk_size=4)
        monkeypatch.undo()
        assert streamed == whole
