"""Shared fixtures: seeded RNGs, tiny traces, paths to the shared real data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POINTAE_SHARED_DATA", ROOT.parent / "shared" / "data"))
BINTU_CSV = SHARED_DATA / "IMR90_chr21-18-20Mb.csv"
FOFCT_CSV = SHARED_DATA / "IMR90_chr21-18-20Mb_first300.fofct.csv"
CTCF_TSV = SHARED_DATA / "K562_chr21_ctcf_sites_hg19.tsv"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")
    parser.addoption("--rungpu", action="store_true", help="run tests marked gpu")


def pytest_collection_modifyitems(config, items):
    for flag, marker in (("--runslow", "slow"), ("--rungpu", "gpu")):
        if config.getoption(flag):
            continue
        skip = pytest.mark.skip(reason=f"needs {flag}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture
def one_thread():
    """One intra-op torch thread for the test, restored afterwards.

    On an oversubscribed 2-core machine two OpenMP threads spin-wait and run tiny models up to
    40x slower than one. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_traces():
    """8 traces x 16 loci (random walks in nm) with some loci missing."""
    from pointae.testing import tiny_traces

    return tiny_traces(n=8, n_loci=16, seed=0)


@pytest.fixture(scope="session")
def shared_data():
    if not BINTU_CSV.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
