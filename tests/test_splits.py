import re
from datetime import datetime, timedelta

import pandas as pd
import pytest

from diffrec_core.ingest import SyntheticConfig, ingest_frame, ingest_synthetic
from diffrec_core.splits import SplitConfig, make_split, setting_config, stage, stage_and_split
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
    ingest_frame(con, frame(rows), "other", "first")
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


def split_state(con):
    """Every staged and split row of the warehouse, to compare before and after a refused command."""
    return {table: con.execute(f"select * exclude (created_at) from {table} order by all" if table == "split_reports"
                               else f"select * from {table} order by all").fetchall()
            for table in ("users", "items", "interactions", "split_interactions", "split_reports")}


RATED = [(f"u{u}", str(i), 1 + (u + i) % 5, u * 10 + i) for u in range(1, 9) for i in range(3, 9)]


def test_refused_split_leaves_staging_and_every_split_as_they_were(con):
    """A new key that moves every id, then a split that fails: the restage is rolled back with it,
    so the old users and the clean and temporal splits survive."""
    ingest_frame(con, frame(RATED), "d", "first")
    for setting in ("clean", "temporal"):
        stage_and_split(con, "d", SplitConfig(setting=setting))
    before = split_state(con)
    ingest_frame(con, frame([("u0", "0", 5, 100)]), "d", "moving")  # sorts first: every id moves
    with pytest.raises(ValueError, match=re.escape("dataset 'd' has no staged interaction with rating >= 99.0")):
        stage_and_split(con, "d", SplitConfig(min_rating=99))
    assert split_state(con) == before
    staged, report = stage_and_split(con, "d")  # the same split that succeeds restages and drops the stale ones
    assert staged.splits_dropped == ("clean", "temporal") and staged.n_users == 9
    assert report.setting == "clean"
    assert con.execute("select setting from split_reports").fetchall() == [("clean",)]


def test_split_task_is_one_transaction(tmp_path):
    from tasks.data import split as split_task
    from diffrec_core.warehouse import connect as open_warehouse

    path = str(tmp_path / "w.duckdb")
    with open_warehouse(path) as con:
        ingest_frame(con, frame(RATED), "d", "first")
        stage_and_split(con, "d")
        ingest_frame(con, frame([("u0", "0", 5, 100)]), "d", "moving")
        before = split_state(con)
    with pytest.raises(ValueError, match="no staged interaction with rating >= 99.0"):
        split_task.fn(path, "d", SplitConfig(min_rating=99))
    with open_warehouse(path, read_only=True) as con:
        assert split_state(con) == before
    assert split_task.fn(path, "d", SplitConfig())["setting"] == "clean"


def test_noisy_random_name_gives_the_noise_ratio():
    named = SplitConfig(setting="noisy-random-0.5", method="per_user")
    assert named == setting_config("noisy-random", 0.5, method="per_user")
    assert (named.noise, named.noise_ratio) == ("random", 0.5)
    assert SplitConfig(setting="noisy-random-1") == setting_config("noisy-random", 1.0)
    assert SplitConfig.model_validate(named.model_dump()) == named  # a dumped config (flow parameters) round-trips
    assert SplitConfig(setting="noisy-natural").noise == "natural"
    assert SplitConfig(setting="noisy-natural", noise_ratio=0.3).noise_ratio == 0.3
    assert SplitConfig(setting="noisy").noise == "none"  # only 'noisy-' names are reserved
    precise = setting_config("noisy-random", 0.1234567)  # named with 6 significant digits, as always
    assert (precise.setting, precise.noise_ratio) == ("noisy-random-0.123457", 0.1234567)


@pytest.mark.parametrize("setting, error", [
    ("noisy-random-0", "noise_ratio: Input should be greater than 0 (got 0.0)"),
    ("noisy-random-1.5", "noise_ratio: Input should be less than or equal to 1 (got 1.5)"),
    ("noisy-random-nan", "noise_ratio: Input should be a finite number (got nan)"),
])
def test_noisy_random_name_out_of_range_is_refused(setting, error):
    from diffrec_core.config import _first_error

    with pytest.raises(ValueError) as exc:
        SplitConfig(setting=setting)
    assert _first_error(exc.value) == error


@pytest.mark.parametrize("setting", ["noisy-random-abc", "noisy-random-0.50", "noisy-random-1e-1", "noisy-random",
                                     "noisy-natural-0.2", "noisy-x"])
def test_unknown_noisy_names_are_refused(setting):
    with pytest.raises(ValueError, match=re.escape(
            f"setting {setting!r}: names starting 'noisy-' are the noise settings 'noisy-natural' and 'noisy-random-P' "
            "(P: the noise ratio in (0, 1], as stored, e.g. noisy-random-0.2)")):
        SplitConfig(setting=setting)


@pytest.mark.parametrize("fields, message", [
    (dict(setting="noisy-random-0.5", noise_ratio=0.3), "setting 'noisy-random-0.5' means noise_ratio 0.5, but noise_ratio is 0.3"),
    (dict(setting="noisy-random-0.5", noise="none"), "setting 'noisy-random-0.5' means noise 'random', but noise is 'none'"),
    (dict(setting="noisy-natural", noise="random"), "setting 'noisy-natural' means noise 'natural', but noise is 'random'"),
])
def test_fields_that_contradict_a_noisy_name_are_refused(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SplitConfig(**fields)


def test_noise_setting_that_adds_no_noise_is_refused(con):
    ingest_frame(con, frame(RATED), "d", "first")
    stage(con, "d")
    assert make_split(con, "d", setting_config("noisy-natural", 1.0)).train_rows > make_split(con, "d").train_rows
    before = split_state(con)
    with pytest.raises(ValueError, match=re.escape(
            "dataset 'd', setting 'noisy-natural': natural noise adds no interaction: none rated below 0 fits a user's "
            "train/valid window within round(1 x their clean count); raise min_rating or noise_ratio")):
        make_split(con, "d", setting_config("noisy-natural", 1.0, min_rating=0))  # every row is clean: nothing is noise
    with pytest.raises(ValueError, match=re.escape(
            "dataset 'd', setting 'noisy-random-0.01': random noise adds no interaction: round(0.01 x each user's "
            "count) is 0 or they have no item left; raise noise_ratio")):
        make_split(con, "d", setting_config("noisy-random", 0.01))
    assert split_state(con) == before


@pytest.mark.parametrize("rows, counts", [
    ([("a", "x", 5, 0)], "train 1, valid 0, test 0"),
    ([("a", "x", 5, 0), ("a", "y", 5, 1)], "train 1, valid 1, test 0"),  # cuts round(2 x 0.5) = 1, round(2 x 0.75) = 2
])
def test_split_with_an_empty_part_is_refused(con, rows, counts):
    ingest_frame(con, frame(rows), "one", "t")
    with pytest.raises(ValueError, match=re.escape(
            f"dataset 'one', setting 'clean': {counts} rows; validation and test each need at least one: "
            "ingest more interactions")):
        stage_and_split(con, "one", SplitConfig(ratios=(0.5, 0.25, 0.25)))
    assert all(not rows for rows in split_state(con).values())  # not even staged
