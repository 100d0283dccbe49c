"""Training settings from raw logs: clean, noisy-natural, noisy-random-p and temporal splits."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from diffrec_core.ingest import SyntheticConfig, ingest_frame, ingest_synthetic
from diffrec_core.interactions import load_split, model_input
from diffrec_core.config import TimeWeightsConfig
from diffrec_core.splits import SplitConfig, make_split, random_noise, setting_config, stage
from diffrec_core.warehouse import connect

SMALL = SyntheticConfig(n_users=300, n_items=200, n_interactions=12_000, seed=11)
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5)


def _settings(method):
    out = [setting_config("clean", method=method), setting_config("noisy-natural", method=method),
           setting_config("temporal", method=method)]
    return out + [setting_config("noisy-random", p, method=method) for p in RATIOS]


@pytest.fixture(scope="module", params=["global", "per_user"])
def db(request, tmp_path_factory):
    """A staged synthetic dataset with every setting made by one split method."""
    path = tmp_path_factory.mktemp(f"settings-{request.param}") / "w.duckdb"
    with connect(path) as con:
        ingest_synthetic(con, "syn", SMALL)
        stage(con, "syn")
        for config in _settings(request.param):
            make_split(con, "syn", config)
    return path


def rows(con, setting, split=None):
    query = "select split, user_id, item_id from split_interactions where dataset = 'syn' and setting = $s"
    frame = con.execute(query, {"s": setting}).df()
    return frame if split is None else frame[frame.split == split]


def as_set(frame):
    return set(zip(frame.split, frame.user_id, frame.item_id))


def test_setting_names():
    assert [c.setting for c in _settings("global")] == [
        "clean", "noisy-natural", "temporal", *(f"noisy-random-{p}" for p in RATIOS)]
    with pytest.raises(ValueError, match="unknown setting"):
        setting_config("noisy")
    with pytest.raises(ValueError, match="adds no noise"):
        setting_config("clean", 0.2)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        setting_config("noisy-random", 1.5)


def test_test_sets_identical_and_noise_only_in_train_valid(db):
    with connect(db, read_only=True) as con:
        clean = rows(con, "clean")
        for config in _settings("global")[1:]:
            other = rows(con, config.setting)
            assert as_set(other[other.split == "test"]) == as_set(clean[clean.split == "test"]), config.setting
            assert as_set(clean) <= as_set(other), config.setting  # the clean rows are all kept
            added = as_set(other) - as_set(clean)
            assert {s for s, _, _ in added} <= {"train", "valid"}, config.setting
            assert (len(added) > 0) == (config.noise != "none"), config.setting
            # a (user, item) pair appears once in a setting
            assert not other.duplicated(["user_id", "item_id"]).any(), config.setting
        assert as_set(rows(con, "temporal")) == as_set(clean)


def test_natural_noise_is_low_rated_in_window_and_capped(db):
    with connect(db, read_only=True) as con:
        report = con.execute("select method from split_reports where setting = 'noisy-natural'").fetchone()[0]
        added = con.execute(
            """
            select n.split, n.user_id, n.item_id, n.ts, i.rating
            from split_interactions n
            join interactions i using (dataset, user_id, item_id)
            where n.dataset = 'syn' and n.setting = 'noisy-natural'
              and not exists (select 1 from split_interactions c where c.dataset = 'syn' and c.setting = 'clean'
                              and c.user_id = n.user_id and c.item_id = n.item_id)
            """
        ).df()
        clean = con.execute(
            "select split, user_id, ts from split_interactions where dataset = 'syn' and setting = 'clean'"
        ).df()
    assert len(added) > 0 and (added.rating < 4).all()
    counts = clean[clean.split != "test"].groupby(["user_id", "split"]).size()
    got = added.groupby(["user_id", "split"]).size()
    cap = np.floor(0.1 * counts.reindex(got.index).to_numpy() + 0.5)
    assert (got.to_numpy() <= cap).all()
    assert len(added) <= 0.1 * counts.sum() + counts.size  # train+valid stays close to clean's
    # Each added row lies in its split's time window: never after the last clean row of that split.
    scope = ["user_id", "split"] if report == "per_user" else ["split"]
    ends = clean.groupby(scope).ts.max()
    limit = added.set_index(scope).index.map(ends)
    assert (added.ts.to_numpy() <= np.asarray(limit, dtype="datetime64[us]")).all()


def test_random_noise_counts_match_ratio_and_items_are_new(db):
    with connect(db, read_only=True) as con:
        seen = con.execute("select user_id, item_id from interactions where dataset = 'syn'").df()
        clean = rows(con, "clean")
        counts = clean[clean.split != "test"].groupby(["user_id", "split"]).size()
        seen_pairs = set(zip(seen.user_id, seen.item_id))
        for p in RATIOS:
            other = rows(con, f"noisy-random-{p}")
            added = pd.DataFrame(sorted(as_set(other) - as_set(clean)), columns=["split", "user_id", "item_id"])
            assert not any(pair in seen_pairs for pair in zip(added.user_id, added.item_id)), p
            got = added.groupby(["user_id", "split"]).size().reindex(counts.index, fill_value=0)
            expected = np.floor(p * counts.to_numpy() + 0.5)
            assert np.array_equal(got.to_numpy(), expected), p
            total = len(added) / counts.sum()
            assert abs(total - p) <= 0.5 * counts.size / counts.sum() + 1e-9, (p, total)


def test_random_noise_is_seeded():
    seen = (np.array([0, 3, 3, 5]), np.array([1, 4, 7, 0, 9]))  # user 0: 1 4 7; user 1: none; user 2: 0 9
    users = np.array([0, 0, 0, 0, 2, 2, 2])
    parts = np.array([0, 0, 0, 1, 0, 0, 1])
    times = np.arange(7) * 10
    a = random_noise(seen, users, parts, times, n_items=12, ratio=0.5, seed=1)
    b = random_noise(seen, users, parts, times, n_items=12, ratio=0.5, seed=1)
    c = random_noise(seen, users, parts, times, n_items=12, ratio=0.5, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["item"], c["item"])
    # user 0: round(1.5) = 2 train + round(0.5) = 1 valid; user 2: 1 train + 1 valid
    assert list(zip(a["user"], a["part"])) == [(0, 0), (0, 0), (0, 1), (2, 0), (2, 1)]
    for user, item in zip(a["user"], a["item"]):
        assert item not in seen[1][seen[0][user] : seen[0][user + 1]] and 0 <= item < 12
    assert len(set(a["item"][:3])) == 3  # one user's train and valid noise are distinct items
    # times come from the user's own rows of the same part
    assert set(a["time"][:2]) <= {0, 10, 20} and a["time"][2] == 30


def _frame(rows):
    base = datetime(2024, 1, 1)
    return pd.DataFrame({"user_key": [r[0] for r in rows], "item_key": [r[1] for r in rows],
                         "rating": [r[2] for r in rows], "ts": [base + timedelta(days=r[3]) for r in rows]})


def test_implicit_log_refuses_natural_noise(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        ingest_frame(con, _frame([(u, 2 * u + i, None, 3 * u + i) for u in range(4) for i in range(6)]), "imp", "t")
        stage(con, "imp")
        with pytest.raises(ValueError, match="needs ratings.*implicit feedback"):
            make_split(con, "imp", setting_config("noisy-natural", method="per_user"))
        assert con.execute("select count(*) from split_interactions").fetchone()[0] == 0  # nothing half-written
        report = make_split(con, "imp", setting_config("noisy-random", 0.5, method="per_user"))
        assert report.train_rows > make_split(con, "imp", setting_config("clean", method="per_user")).train_rows


def test_temporal_weights_follow_timestamps(db):
    with connect(db, read_only=True) as con:
        data = load_split(con, "syn", "temporal")
        times = con.execute(
            "select user_id, item_id, epoch_us(ts) from split_interactions "
            "where dataset = 'syn' and setting = 'temporal' and split = 'train'"
        ).fetchall()
    weights = model_input(data.train, data.train_order, TimeWeightsConfig(w_min=0.2))
    ts = {(u, i): t for u, i, t in times}
    for user in range(data.n_users):
        lo, hi = data.train.indptr[user], data.train.indptr[user + 1]
        if hi == lo:
            continue
        items, w = data.train.indices[lo:hi], weights.data[lo:hi]
        order = sorted(range(hi - lo), key=lambda k: (ts[(user, items[k])], items[k]))
        sorted_w = w[order]
        assert np.all(np.diff(sorted_w) > 0), user  # strictly rising with time (ties by item id)
        assert sorted_w[-1] == pytest.approx(1.0)
        assert sorted_w[0] == pytest.approx(0.2 if hi - lo > 1 else 1.0)


def test_split_config_refuses_natural_noise_without_min_rating():
    with pytest.raises(ValueError, match="natural noise needs min_rating"):
        SplitConfig(setting="x", noise="natural", min_rating=None)
