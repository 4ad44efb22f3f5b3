"""Hypothesis fuzzing of every text reader: a mutated file either reads into valid Traces or fails
with one PointaeError line naming the file; never another exception."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointae.data.io import read_traces
from pointae.errors import PointaeError

FILES = Path(__file__).parent / "files"


def _head(name: str, n_lines: int) -> bytes:
    return b"\n".join((FILES / name).read_bytes().split(b"\n")[:n_lines]) + b"\n"


SEEDS = {
    "bintu": _head("bintu_labels_restart.csv", 40),
    "fofct": _head("fofct_v0.1_chr19_3traces.csv", 40),
    "fofct_small": _head("fofct_small.fofct.csv", 30),
    "ecsv": _head("him_roi5_excerpt.ecsv", 60),
    "huang": _head("huang2021_sox2_excerpt.csv", 50),
    "tsv": _head("snapfish_style.tsv", 40),
    "csv": b"#unit=nm\n#attrs={\"a\": 1}\ntrace_id,locus,x,y,z,chrom,start,end\n"
    + b"".join(f"t{i // 4},{i % 4},{i}.5,{i},-{i}.25,chr1,{100 * (i % 4)},{100 * (i % 4) + 50}\n".encode() for i in range(16)),
}
# lines that look like headers, directives or other formats' markers
HEADERISH = [
    b"##columns=(Spot_ID, Trace_ID, X)",
    b"##Columns=(a, b)",
    b"#pointae_attrs=[1, 2]",
    b"#pointae_attrs={\"x\": 1}",
    b"#attrs=[1]",
    b"#unit=furlong",
    b"##XYZ_unit=px",
    b"# %ECSV 1.0",
    b"# ---",
    b"# datatype: [1, 2]",
    b"# - {name: x, datatype: float32}",
    b"Chromosome index,Segment index,Z,X,Y",
    b"trace_id,locus,x,y,z",
    b"chr\tcell_id\tpos\tx\ty\tz",
    b"1e39,inf,-inf,nan,1e308",
    b",,,,,,,,,,",
    b"\"unterminated,quote",
    b"\x00\x01\x02",
    b"\xff\xfe\xde\xad",
    b"",
]


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "line_del", "line_dup", "line_ins", "truncate", "swap"]))
        lines = bytes(data).split(b"\n")
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "delete" and data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i : i + draw(st.integers(1, 20))]
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.sampled_from([b",", b"\t", b" ", b"\r", b"\n", b"\"", b"#", b"nan", b"-", b".", b"1e9"]))
        elif op == "line_del" and len(lines) > 1:
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = bytearray(b"\n".join(lines))
        elif op == "line_dup" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
        elif op == "line_ins":
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(HEADERISH)))
            data = bytearray(b"\n".join(lines))
        elif op == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif op == "swap" and len(lines) > 2:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def check_reads_or_fails_cleanly(content: bytes) -> None:
    fd, name = tempfile.mkstemp(suffix=".dat")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                t = read_traces(name)
            except PointaeError as e:
                msg = str(e)
                assert "\n" not in msg and msg.startswith(name), msg
                return
        t.validate()
    finally:
        os.unlink(name)


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_seed_files_read(kind):
    check_reads_or_fails_cleanly(SEEDS[kind])


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_mutated_files_never_crash(kind):
    @settings(max_examples=int(os.environ.get("POINTAE_FUZZ_EXAMPLES", 40)), deadline=None, derandomize=not os.environ.get("POINTAE_FUZZ_RANDOM"),
              suppress_health_check=list(HealthCheck))
    @given(mutated(SEEDS[kind]))
    def run(content):
        check_reads_or_fails_cleanly(content)

    run()
