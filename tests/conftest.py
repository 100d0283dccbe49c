import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path to a reference dataset, or skip the test with a message when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"reference data {path} is absent")
    return path


def checkerboard(n_blocks: int = 4, users_per_block: int = 25, items_per_block: int = 12):
    """Block-diagonal users x items; each user saw every item of their block but one (withheld).

    Returns (train CSR, withheld item per user).
    """
    rows, cols, withheld = [], [], []
    for b in range(n_blocks):
        items = np.arange(b * items_per_block, (b + 1) * items_per_block)
        for j in range(users_per_block):
            u = b * users_per_block + j
            held = items[j % items_per_block]
            withheld.append(held)
            for i in items:
                if i != held:
                    rows.append(u)
                    cols.append(i)
    shape = (n_blocks * users_per_block, n_blocks * items_per_block)
    train = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    return train, np.asarray(withheld)


@pytest.fixture
def checker():
    return checkerboard()
