from datetime import datetime, timedelta

import pandas as pd
import pytest

from diffrec_core.ingest import SyntheticConfig, ingest_frame, ingest_synthetic
from diffrec_core.splits import SplitConfig, make_split, stage
from diffrec_core.warehouse import connect

SMALL = SyntheticConfig(n_users=400, n_items=300, n_interactions=16_000, seed=7)


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        yield con


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    """A staged synthetic dataset 'syn' with the default split and a per-user split."""
    path = tmp_path_factory.mktemp("syn") / "w.duckdb"
    with connect(path) as con:
        ingest_synthetic(con, "syn", SMALL)
        stage(con, "syn")
        make_split(con, "syn", SplitConfig())
        make_split(con, "syn", SplitConfig(setting="per-user", method="per_user"))
    return path


def frame(rows):
    """rows: (user_key, item_key, rating, day offset)."""
    base = datetime(2024, 1, 1)
    return pd.DataFrame(
        {
            "user_key": [r[0] for r in rows],
            "item_key": [r[1] for r in rows],
            "rating": [r[2] for r in rows],
            "ts": [base + timedelta(days=r[3]) for r in rows],
        }
    )


def test_dense_ids_round_trip_and_numeric_key_order(con):
    ingest_frame(con, frame([("10", "b", 5, 0), ("2", "a", 4, 1), ("x", "10", 3, 2), ("2", "9", 5, 3)]), "d", "t")
    report = stage(con, "d")
    assert (report.n_users, report.n_items, report.n_interactions) == (3, 4, 4)
    assert con.execute("select user_id, user_key from users order by user_id").fetchall() == [
        (0, "2"), (1, "10"), (2, "x"),
    ]
    assert con.execute("select item_id, item_key from items order by item_id").fetchall() == [
        (0, "9"), (1, "10"), (2, "a"), (3, "b"),
    ]
    back = con.execute(
        "select u.user_key, i.item_key from interactions s "
        "join users u using (dataset, user_id) join items i using (dataset, item_id) order by all"
    ).fetchall()
    assert back == sorted([("10", "b"), ("2", "a"), ("x", "10"), ("2", "9")])
    # Re-staging gives the same ids.
    stage(con, "d")
    assert con.execute("select count(*) from users").fetchall() == [(3,)]


def test_restaging_that_moves_ids_drops_every_split_of_the_dataset(con):
    """Split rows hold dense ids: a restage that gives a known key another id must not leave them pointing at
    other users and items. Keys that only sort after the known ones move nothing, and the splits stay."""
    rows = [(f"u{u}", str(i), 5, u + i) for u in range(1, 9) for i in range(3, 9)]
    ingest_frame(con, frame(rows), "d", "first")
    ingest_frame(con, frame([("u1", "3", 5, 0)]), "other", "first")
    stage(con, "d")
    stage(con, "other")
    for setting in ("clean", "temporal"):
        make_split(con, "d", SplitConfig(setting=setting, min_rating=None))
    make_split(con, "other", SplitConfig(min_rating=None))

    def split_pairs():
        return con.execute(
            "select s.setting, u.user_key, i.item_key from split_interactions s join users u using (dataset, user_id) "
            "join items i using (dataset, item_id) where s.dataset = 'd' order by all").fetchall()

    pairs = split_pairs()
    ingest_frame(con, frame([("u9", "9", 5, 40)]), "d", "appended")  # sorts after every known key: no id moves
    report = stage(con, "d")
    assert report.splits_dropped == () and split_pairs() == pairs

    ingest_frame(con, frame([("u1", "1", 5, 41)]), "d", "moving")  # item "1" sorts first: every item id moves
    report = stage(con, "d")
    assert report.splits_dropped == ("clean", "temporal")
    assert con.execute("select count(*) from split_interactions where dataset = 'd'").fetchone() == (0,)
    assert con.execute("select count(*) from split_reports where dataset = 'd'").fetchone() == (0,)
    assert con.execute("select count(*) from split_interactions where dataset = 'other'").fetchone()[0] > 0
    assert con.execute("select count(*) from duckdb_tables() where table_name = 'staged_ids_before'").fetchone() == (0,)


def test_dedupe_keeps_the_latest_interaction(con):
    ingest_frame(con, frame([("u", "i", 5, 3), ("u", "i", 1, 1), ("u", "j", 2, 0)]), "d", "first")
    ingest_frame(con, frame([("u", "j", 4, 0), ("u", "i", 3, 2)]), "d", "second")  # j: same ts, later batch
    report = stage(con, "d")
    assert report.n_raw == 5 and report.duplicates_dropped == 3
    rows = con.execute(
        "select i.item_key, s.rating from interactions s join items i using (dataset, item_id) order by 1"
    ).fetchall()
    assert rows == [("i", 5.0), ("j", 4.0)]


def test_stage_without_raw_rows_raises(con):
    with pytest.raises(ValueError, match="no raw interactions"):
        stage(con, "empty")


def test_global_split_ratios_and_chronology(synthetic_db):
    with connect(synthetic_db, read_only=True) as con:
        shares = dict(
            con.execute(
                "select split, count(*) / sum(count(*)) over () from split_interactions "
                "where dataset = 'syn' and setting = 'clean' group by split"
            ).fetchall()
        )
        bounds = dict(
            (split, (lo, hi))
            for split, lo, hi in con.execute(
                "select split, min(ts), max(ts) from split_interactions "
                "where dataset = 'syn' and setting = 'clean' group by split"
            ).fetchall()
        )
        low = con.execute(
            "select count(*) from split_interactions s join interactions i using (dataset, user_id, item_id) "
            "where s.setting = 'clean' and i.rating < 4"
        ).fetchall()[0][0]
    for split, expected in [("train", 0.7), ("valid", 0.1), ("test", 0.2)]:
        assert abs(shares[split] - expected) <= 0.01
    assert bounds["train"][1] <= bounds["valid"][0] <= bounds["valid"][1] <= bounds["test"][0]
    assert low == 0


def test_per_user_split_properties(synthetic_db):
    with connect(synthetic_db, read_only=True) as con:
        per_user = con.execute(
            """
            select user_id, count(*) as n,
                   count(*) filter (where split = 'train') as n_train,
                   count(*) filter (where split = 'valid') as n_valid,
                   count(*) filter (where split = 'test') as n_test,
                   max(ts) filter (where split = 'train') as train_max,
                   min(ts) filter (where split = 'valid') as valid_min,
                   max(ts) filter (where split = 'valid') as valid_max,
                   min(ts) filter (where split = 'test') as test_min
            from split_interactions where dataset = 'syn' and setting = 'per-user'
            group by user_id
            """
        ).df()
    big = per_user[per_user.n >= 3]
    assert len(big) > 0 and (big[["n_train", "n_valid", "n_test"]] > 0).all().all()
    assert (big.train_max <= big.valid_min).all() and (big.valid_max <= big.test_min).all()
    small = per_user[per_user.n < 3]
    assert (small.n_train == small.n).all()
    total = per_user[["n_train", "n_valid", "n_test"]].sum() / per_user.n.sum()
    assert abs(total.n_train - 0.7) <= 0.01 and abs(total.n_valid - 0.1) <= 0.01 and abs(total.n_test - 0.2) <= 0.01


def test_split_report_counts_and_exclusions(con):
    rows = [("a", "x", 5, 0), ("a", "y", 5, 1), ("b", "x", 5, 2), ("b", "y", 4, 3), ("a", "z", 2, 4),
            ("c", "x", 5, 5), ("a", "w", 5, 6), ("d", "v", None, 7), ("b", "w", 5, 8), ("c", "y", 5, 9)]
    ingest_frame(con, frame(rows), "d", "t")
    stage(con, "d")
    report = make_split(con, "d", SplitConfig(ratios=(0.5, 0.25, 0.25)))
    # 9 rows kept (z rated 2 dropped, v has a null rating: kept); cut points round(9 * 0.5) = 5
    # and round(9 * 0.75) = 7: train a-x a-y b-x b-y c-x, valid a-w d-v, test b-w c-y.
    assert (report.train_rows, report.valid_rows, report.test_rows) == (5, 2, 2)
    # not evaluable: a-w (item w unseen), d-v (user d and item v unseen), b-w (item w unseen)
    assert (report.valid_rows_excluded, report.test_rows_excluded) == (2, 1)
    assert (report.users_excluded, report.items_excluded) == (1, 2)
    stored = con.execute("select train_rows, users_excluded, method from split_reports").fetchall()
    assert stored == [(5, 1, "global")]
    again = make_split(con, "d", SplitConfig(ratios=(0.5, 0.25, 0.25)))  # replaces, never appends
    assert again.train_rows == 5
    assert con.execute("select count(*) from split_interactions").fetchall() == [(9,)]
    everything = make_split(con, "d", SplitConfig(setting="all", min_rating=None, ratios=(0.5, 0.25, 0.25)))
    assert everything.train_rows + everything.valid_rows + everything.test_rows == 10


def test_split_config_validation():
    assert SplitConfig().ratios == (0.7, 0.1, 0.2)
    for bad in [dict(ratios=(0.7, 0.2, 0.2)), dict(ratios=(1.0, 0.0, 0.0)), dict(ratios=(0.8, -0.1, 0.3)),
                dict(method="random"), dict(setting="bad name")]:
        with pytest.raises(ValueError):
            SplitConfig(**bad)


def test_make_split_without_staged_rows_raises(con):
    with pytest.raises(ValueError, match="no staged interaction"):
        make_split(con, "nothing")
    assert con.execute("select count(*) from split_reports").fetchall() == [(0,)]
