from __future__ import annotations

import pytest

# tiny, fast settings shared by the engine and CLI tests
_FAST = [
    "model.width=4",
    "model.latent_dim=4",
    "train.batch_size=16",
    "train.progress=false",
    "train.threads=2",
    "train.warmup_steps=2",
]


@pytest.fixture(scope="session")
def small_traces():
    """48 random-walk traces x 16 loci (nm), ~10% loci missing: 33 train / 5 val / 10 test."""
    from pointae.testing import tiny_traces

    return tiny_traces(n=48, n_loci=16, seed=1)


@pytest.fixture(scope="session")
def small_file(tmp_path_factory, small_traces):
    p = tmp_path_factory.mktemp("data") / "small.h5"
    small_traces.save(p)
    return p


@pytest.fixture(scope="session")
def fast():
    """Overrides that make a run tiny and quiet."""
    return list(_FAST)
