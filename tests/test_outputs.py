"""Issue 11, from the user's side: no command destroys its input, a sibling output or a symlink.

Each test runs the CLI, then checks the file system: inputs intact (same bytes), no stray files,
symlink targets untouched, one error line and exit code 1 on refusal.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.traces import Traces

ROOT = Path(__file__).resolve().parents[1]
BINTU = ROOT / "tests" / "data" / "files" / "bintu_small.csv"
runner = CliRunner()


def _digest(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _refused(res, *words):
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == 1, res.output
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
    for w in words:
        assert w in res.output, res.output


def _no_tmp(folder: Path):
    assert not [p.name for p in folder.rglob(".*.tmp")]


@pytest.fixture
def work(tmp_path):
    """A folder with a small Bintu file ``v.csv``, a fake run directory and a sibling file."""
    (tmp_path / "v.csv").write_bytes(BINTU.read_bytes())
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: {}\n")
    (tmp_path / "other.txt").write_text("keep me\n")
    return tmp_path


# every writing command with its output pointed at a path; {out} is replaced
COMMANDS = {
    "convert": ["convert", "{in}", "{out}"],
    "impute": ["impute", "{in}", "--out", "{out}"],
    "reconstruct": ["reconstruct", "{in}", "--out", "{out}"],
    "embed": ["embed", "{run}", "{in}", "--out", "{out}"],
    "evaluate-imputation": ["evaluate-imputation", "{in}", "--json", "{out}"],
    "view": ["view", "{in}", "--png", "{out}"],
    "export-pdb": ["export-pdb", "{in}", "{out}"],
    "simulate": ["simulate", "--n", "2", "--loci", "4", "-q", "--ctcf", "{in}", "--out", "{out}"],
}


def _args(cmd, inp, out, run):
    return [
        a.replace("{in}", str(inp)).replace("{out}", str(out)).replace("{run}", str(run))
        for a in COMMANDS[cmd]
    ]


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_output_equal_to_input_is_refused(work, cmd):
    inp, before = work / "v.csv", _digest(work / "v.csv")
    (work / "link.csv").symlink_to(inp)
    os.link(inp, work / "hard.csv")
    for out in (inp, work / "sub" / ".." / "v.csv", work / "link.csv", work / "hard.csv"):
        res = runner.invoke(app, _args(cmd, inp, out, work / "run") + ["--overwrite"])
        _refused(res, "input")
        assert _digest(inp) == before
    assert (work / "link.csv").is_symlink()
    _no_tmp(work)


@pytest.mark.parametrize("cmd", ["embed", "impute"])
def test_output_inside_a_run_directory_read_is_refused(work, cmd):
    run = work / "run"
    before = _digest(run / "config.yaml")
    extra = ["--model", str(run)] if cmd == "impute" else []
    for out in (run / "config.yaml", run / "new.csv"):
        res = runner.invoke(app, _args(cmd, work / "v.csv", out, run) + extra + ["--overwrite"])
        _refused(res, "run")
    assert _digest(run / "config.yaml") == before and not (run / "new.csv").exists()


def test_existing_file_needs_overwrite_then_symlink_is_written_through(work):
    inp = work / "v.csv"
    target = work / "target.h5"
    target.write_text("old")
    (work / "link.h5").symlink_to(target)
    res = runner.invoke(app, ["convert", str(inp), str(work / "link.h5")])
    _refused(res, "already exists", "--overwrite")
    assert target.read_text() == "old" and (work / "link.h5").is_symlink()
    res = runner.invoke(app, ["convert", str(inp), str(work / "link.h5"), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert (work / "link.h5").is_symlink() and os.readlink(work / "link.h5") == str(target)
    assert len(Traces.load(target)) == 6
    _no_tmp(work)


def test_symlink_to_a_device_or_pipe_is_never_replaced(work):
    fifo = work / "pipe"
    os.mkfifo(fifo)
    (work / "out.csv").symlink_to(fifo)
    for out in (work / "out.csv", fifo):
        res = runner.invoke(app, ["convert", str(work / "v.csv"), str(out), "--to", "csv", "--overwrite"])
        _refused(res, "not a regular file")
    assert (work / "out.csv").is_symlink() and fifo.is_fifo()
    _no_tmp(work)


def test_parent_that_is_a_file_gives_one_line(work):
    _refused(
        runner.invoke(app, ["convert", str(work / "v.csv"), str(work / "other.txt" / "x.h5")]), "not a folder"
    )
    assert (work / "other.txt").read_text() == "keep me\n"


def test_full_disk_gives_one_line_and_no_partial_file(work, monkeypatch):
    import pointae.errors as errors

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(errors.os, "replace", full)
    _refused(runner.invoke(app, ["convert", str(work / "v.csv"), str(work / "o.h5")]), "No space left")
    assert not (work / "o.h5").exists()
    _no_tmp(work)


def test_binary_config_gives_one_line(work):
    cfg = work / "c.yaml"
    cfg.write_bytes(b"\x00\xff\xfe\x89PNG")
    _refused(runner.invoke(app, ["train", "--config", str(cfg), "--out", str(work / "r")]), "c.yaml")
    assert not (work / "r").exists()


def test_per_trace_names_never_collide_and_are_checked_first(work):
    ids = ["a/b", "a_b", "A_b", "x" * 300, "x" * 299 + "y", ".."]
    rng = np.random.default_rng(0)
    t = Traces(rng.normal(size=(len(ids), 5, 3)).astype(np.float32) * 100)
    t.meta["trace_id"] = ids
    src = work / "ids.h5"
    t.save(src)
    out = work / "pdb"
    out.mkdir()
    res = runner.invoke(app, ["export-pdb", str(src), str(out), "--per-trace"])
    assert res.exit_code == 0, res.output
    files = sorted(out.iterdir())
    assert len(files) == len(ids)
    assert len({f.name.casefold() for f in files}) == len(ids)
    assert all(len(f.name.encode()) <= 200 for f in files)
    from pointae.data.io.pdb import read_pdb

    assert sorted(read_pdb(f).trace_ids[0] for f in files) == sorted(ids)
    # a second run is refused before any file is written: no file changes
    stamps = {f: f.stat().st_mtime_ns for f in files}
    last = files[-1]
    last.unlink()
    _refused(runner.invoke(app, ["export-pdb", str(src), str(out), "--per-trace"]), "already exists")
    assert not last.exists() and all(f.stat().st_mtime_ns == s for f, s in stamps.items() if f != last)


def test_stale_tmp_files_of_our_pattern_are_cleaned(work):
    from pointae.errors import _host_tag

    out = work / "o.h5"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = work / f".o.h5.pointae-{_host_tag()}-{dead_pid}-abcdefgh.tmp"
    live = work / f".o.h5.pointae-{_host_tag()}-{os.getpid()}-abcdefgh.tmp"
    legacy_old, legacy_new = work / ".o.h5.k2j4h5g6.tmp", work / ".o.h5.zz9yx8w7.tmp"
    foreign = work / ".o.h5.notours.tmp"
    for p in (stale, live, legacy_old, legacy_new, foreign):
        p.write_text("partial")
    old = time.time() - 2 * 3600
    os.utime(legacy_old, (old, old))
    res = runner.invoke(app, ["convert", str(work / "v.csv"), str(out)])
    assert res.exit_code == 0, res.output
    assert not stale.exists() and not legacy_old.exists()
    assert live.exists() and legacy_new.exists() and foreign.exists()


def test_kill_during_atomic_write_leaves_nothing_after_the_next_run(work):
    out = work / "o.csv"
    code = (
        "import sys, time\n"
        "from pointae.errors import atomic_path\n"
        f"with atomic_path({str(out)!r}) as tmp:\n"
        "    tmp.write_text('partial'); print('ready', flush=True); time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "ready"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert [x.name for x in work.glob(".o.csv.*.tmp")]  # what kill -9 leaves
    res = runner.invoke(app, ["convert", str(work / "v.csv"), str(out)])
    assert res.exit_code == 0, res.output
    _no_tmp(work)


def test_evaluate_imputation_on_too_few_traces_says_why(work):
    res = runner.invoke(app, ["evaluate-imputation", str(work / "v.csv")])
    _refused(res, "6 usable trace(s)", "too few", "--max-missing")


# ------------------------------------------------------------------------------- CLI fuzz
FRESH_SUFFIX = {
    "convert": ".h5",
    "impute": ".csv",
    "reconstruct": ".npy",
    "embed": ".csv",
    "evaluate-imputation": ".json",
    "view": ".png",
    "export-pdb": ".pdb",
    "simulate": ".h5",
}


def test_cli_fuzz_no_input_bytes_ever_change(work):
    """Seeded matrix: every writing command, outputs drawn from the inputs (also via ``..``, symlinks
    and hard links), the run directory it reads, existing files, symlinks to them, folders and
    fresh paths, with and without --overwrite. No input may ever change; exit 0 only where allowed."""
    lines = BINTU.read_text().splitlines()
    small = work / "v.csv"
    small.write_text("\n".join(lines[: 2 + 3 * 65]) + "\n")  # 3 traces: fast commands
    run = work / "run"
    (run / "model.safetensors").write_bytes(b"not really weights")
    other = work / "other.txt"
    (work / "link_in.csv").symlink_to(small)
    os.link(small, work / "hard_in.csv")
    (work / "link_other.txt").symlink_to(other)
    (work / "adir").mkdir()
    run_files = {p: p.read_bytes() for p in (run / "config.yaml", run / "model.safetensors")}
    before = {p: _digest(p) for p in [small, *run_files]}
    kinds = {
        "input": small,
        "input_dotdot": work / "adir" / ".." / "v.csv",
        "input_symlink": work / "link_in.csv",
        "input_hardlink": work / "hard_in.csv",
        "run_file": run / "config.yaml",
        "run_new": run / "new.out",
        "existing": other,
        "existing_symlink": work / "link_other.txt",
        "folder": work / "adir",
        "under_a_file": other / "x",
        "fresh": None,
    }
    rng = np.random.default_rng(11)
    seen, codes = set(), []
    for k in range(36):
        cmd = sorted(COMMANDS)[k % len(COMMANDS)]
        kind = list(kinds)[int(rng.integers(len(kinds)))]
        overwrite = bool(rng.integers(2))
        out = kinds[kind] or work / f"fresh{k}{FRESH_SUFFIX[cmd]}"
        args = _args(cmd, small, out, run) + (["--overwrite"] if overwrite else [])
        if cmd == "view":
            args += ["--trace", "1"]
        other.write_text("keep me\n")
        for p, data in run_files.items():  # run/ is an input of embed only; others may overwrite it
            p.write_bytes(data)
        inputs = [small, *run_files] if cmd == "embed" else [small]
        res = runner.invoke(app, args)
        seen.add((cmd, kind))
        codes.append(res.exit_code)
        where = f"{cmd} -> {kind} (overwrite={overwrite}): {res.output}"
        assert res.exit_code in (0, 1) and "Traceback" not in res.output, where
        assert {p: _digest(p) for p in inputs} == {p: before[p] for p in inputs}, where
        assert (work / "link_in.csv").is_symlink() and (work / "link_other.txt").is_symlink(), where
        _no_tmp(work)
        if res.exit_code == 0:  # only new files, or other files with --overwrite; never an input
            new = kind == "fresh" or (kind == "run_new" and cmd != "embed")
            replaced = kind in ("existing", "existing_symlink") or (kind == "run_file" and cmd != "embed")
            assert new or (overwrite and replaced), where
        if kind.startswith("existing") and not overwrite:
            assert res.exit_code == 1 and other.read_text() == "keep me\n", where
    assert len(seen) >= 30 and codes.count(0) >= 5 and codes.count(1) >= 15, (codes, seen)
