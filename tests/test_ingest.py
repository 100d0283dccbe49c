import re
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared_dataset

from diffrec_core.ingest import IngestError, detect_format, ingest_file, ingest_frame
from diffrec_core.splits import stage
from diffrec_core.warehouse import connect

ML1M = "1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n"
ML100K = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
MLLATEST = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,6,0.5,964982224\n"
GENERIC = (
    "customer;product;stars;when\n"
    'alice;"book; 2nd edition";5;2020-01-01T10:00:00+02:00\n'
    "bob;pen;;2020-01-02 08:30:00\n"
    "carol;ink;3;1577923200\n"
)


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        yield con


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def raw(con, dataset):
    return con.execute(
        "select user_key, item_key, rating, ts, line_no from raw_interactions where dataset = $d order by line_no",
        {"d": dataset},
    ).fetchall()


def rejected(con):
    return con.execute("select line_no, raw_text, reason from rejected_rows order by line_no").fetchall()


def counts(con):
    return con.execute(
        "select (select count(*) from ingest_batches), (select count(*) from raw_interactions), "
        "(select count(*) from rejected_rows)"
    ).fetchall()[0]


def assert_one_line_naming(error, path):
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message


def test_ml1m_reader(con, tmp_path):
    path = write(tmp_path, "ratings.dat", ML1M)
    assert detect_format(path) == "ml-1m"
    result = ingest_file(con, path, "ml")
    assert (result.format, result.rows_read, result.rows_loaded, result.rows_rejected, result.skipped) == (
        "ml-1m", 3, 3, 0, False,
    )
    assert raw(con, "ml")[0] == ("1", "1193", 5.0, datetime(2000, 12, 31, 22, 12, 40), 1)
    batch = con.execute("select source, format, sha256, rows_loaded from ingest_batches").fetchall()[0]
    assert batch[:2] == (str(path), "ml-1m") and len(batch[2]) == 64 and batch[3] == 3


def test_ml100k_reader(con, tmp_path):
    path = write(tmp_path, "u.data", ML100K)
    assert detect_format(path) == "ml-100k"
    ingest_file(con, path, "m")
    assert raw(con, "m")[2] == ("22", "377", 1.0, datetime(1997, 11, 7, 7, 18, 36), 3)


def test_ml_latest_reader_skips_header(con, tmp_path):
    path = write(tmp_path, "ratings.csv", MLLATEST)
    assert detect_format(path) == "ml-latest"
    result = ingest_file(con, path, "m")
    assert (result.rows_read, result.rows_loaded) == (3, 3)
    assert [row[2] for row in raw(con, "m")] == [4.0, 4.5, 0.5]
    assert raw(con, "m")[0][4] == 2  # line numbers count the header


def test_generic_csv_with_mapping_iso_and_epoch_timestamps(con, tmp_path):
    path = write(tmp_path, "log.csv", GENERIC)
    assert detect_format(path) == "csv"
    mapping = {"user": "customer", "item": "product", "rating": "stars", "timestamp": "when"}
    result = ingest_file(con, path, "g", columns=mapping)
    assert (result.rows_loaded, result.rows_rejected) == (3, 0)
    assert raw(con, "g") == [
        ("alice", "book; 2nd edition", 5.0, datetime(2020, 1, 1, 8, 0), 2),  # offset converted to UTC
        ("bob", "pen", None, datetime(2020, 1, 2, 8, 30), 3),  # empty rating = implicit
        ("carol", "ink", 3.0, datetime(2020, 1, 2, 0, 0), 4),
    ]


def test_generic_csv_without_rating_column(con, tmp_path):
    path = write(tmp_path, "clicks.tsv", "uid\tiid\tt\nx\ty\t2021-05-01\n")
    ingest_file(con, path, "c", fmt="csv", columns={"user": "uid", "item": "iid", "timestamp": "t"})
    assert raw(con, "c") == [("x", "y", None, datetime(2021, 5, 1), 2)]


def test_parquet_reader(con, tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame(
        {
            "u": [1, 2, 2],
            "i": ["a", "b", "c"],
            "r": [4.0, None, 2.0],
            "t": pd.to_datetime(["2020-01-01 00:00", "2020-02-01 12:00", "2020-03-01 00:00"]),
        }
    ).to_parquet(path)
    assert detect_format(path) == "parquet"
    result = ingest_file(con, path, "p", columns={"user": "u", "item": "i", "rating": "r", "timestamp": "t"})
    assert result.rows_loaded == 3
    assert raw(con, "p")[1] == ("2", "b", None, datetime(2020, 2, 1, 12), 2)


def test_reingest_same_content_is_a_noop(con, tmp_path):
    path = write(tmp_path, "ratings.dat", ML1M)
    first = ingest_file(con, path, "ml")
    copy = write(tmp_path, "copy.dat", ML1M)
    again = ingest_file(con, copy, "ml")
    assert again.skipped and again.batch_id == first.batch_id and again.rows_loaded == 3
    assert counts(con) == (1, 3, 0)
    other = ingest_file(con, path, "other-dataset")
    assert not other.skipped and counts(con) == (2, 6, 0)


def test_bad_rows_go_to_rejected_rows(con, tmp_path):
    text = (
        "1::10::5::978300760\n"
        "1,11,4,978300761\n"  # wrong separator
        "1::12::x::978300762\n"  # non-numeric rating
        "::13::4::978300763\n"  # missing user
        "2::14::3::yesterday\n"  # unparseable timestamp
        "2::15::3\n"  # missing field
        "\n"
        "3::16::4::2001-01-01T00:00:00\n"
    )
    path = write(tmp_path, "ratings.dat", text)
    result = ingest_file(con, path, "ml", fmt="ml-1m")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (7, 2, 5)
    assert rejected(con) == [
        (2, "1,11,4,978300761", "expected 4 fields, found 1"),
        (3, "1::12::x::978300762", "non-numeric rating"),
        (4, "::13::4::978300763", "missing user"),
        (5, "2::14::3::yesterday", "unparseable timestamp"),
        (6, "2::15::3", "expected 4 fields, found 3"),
    ]
    assert [row[4] for row in raw(con, "ml")] == [1, 8]


def test_empty_file_raises_and_writes_nothing(con, tmp_path):
    path = write(tmp_path, "ratings.dat", "")
    with pytest.raises(IngestError) as error:
        ingest_file(con, path, "ml")
    assert_one_line_naming(error, path)
    with pytest.raises(IngestError) as error:
        ingest_file(con, path, "ml", fmt="ml-1m")
    assert_one_line_naming(error, path)
    assert counts(con) == (0, 0, 0)


def test_wrong_separator_everywhere_raises_and_writes_nothing(con, tmp_path):
    path = write(tmp_path, "ratings.dat", ML1M.replace("::", ";"))
    with pytest.raises(IngestError, match="no valid row") as error:
        ingest_file(con, path, "ml", fmt="ml-1m")
    assert_one_line_naming(error, path)
    assert counts(con) == (0, 0, 0)
    # The same content is not remembered as ingested: a corrected call still works.
    assert ingest_file(con, path, "ml", fmt="csv", columns={"user": "1", "item": "1193", "timestamp": "978300760"}).rows_loaded == 2


def test_all_ratings_non_numeric_raises(con, tmp_path):
    path = write(tmp_path, "u.data", "1\t2\tgood\t881250949\n3\t4\tbad\t881250949\n")
    with pytest.raises(IngestError, match="non-numeric rating") as error:
        ingest_file(con, path, "m", fmt="ml-100k")
    assert_one_line_naming(error, path)
    assert counts(con) == (0, 0, 0)


def test_missing_mapped_column_names_column_and_file(con, tmp_path):
    path = write(tmp_path, "log.csv", GENERIC)
    with pytest.raises(IngestError) as error:
        ingest_file(con, path, "g", columns={"user": "customer", "item": "sku", "timestamp": "when"})
    assert "'sku'" in str(error.value)
    assert_one_line_naming(error, path)
    parquet = tmp_path / "p.parquet"
    pd.DataFrame({"u": [1], "i": [2], "t": [3]}).to_parquet(parquet)
    with pytest.raises(IngestError, match="'timestamp'") as error:
        ingest_file(con, parquet, "p", columns={"user": "u", "item": "i", "timestamp": "timestamp"})
    assert_one_line_naming(error, parquet)
    assert counts(con) == (0, 0, 0)


def test_unreadable_and_undetectable_files(con, tmp_path):
    for path in [tmp_path / "absent.dat", tmp_path]:
        with pytest.raises(IngestError) as error:
            ingest_file(con, path, "x")
        assert_one_line_naming(error, path)
    prose = write(tmp_path, "notes.txt", "just some words\n")
    with pytest.raises(IngestError, match=r"detect.*name it \(diffrec ingest --format, or fmt=\)") as error:
        ingest_file(con, prose, "x")
    assert_one_line_naming(error, prose)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(IngestError) as error:
        ingest_file(con, broken, "x", columns={"user": "u", "item": "i", "timestamp": "t"})
    assert_one_line_naming(error, broken)
    latin1 = write(tmp_path, "latin.dat", "1::Caf\xe9::5::978300760\n", encoding="latin-1")
    with pytest.raises(IngestError) as error:
        ingest_file(con, latin1, "x", fmt="ml-1m")
    assert_one_line_naming(error, latin1)
    assert counts(con) == (0, 0, 0)


def test_exact_duplicate_rows_load_and_stage_dedupes(con, tmp_path):
    path = write(tmp_path, "ratings.dat", ML1M + ML1M.splitlines()[0] + "\n")
    result = ingest_file(con, path, "ml")
    assert result.rows_loaded == 4
    assert stage(con, "ml").n_interactions == 3


def test_ingest_frame(con):
    frame = pd.DataFrame(
        {
            "user_key": ["a", "b", None],
            "item_key": ["x", "y", "z"],
            "rating": [5.0, None, 1.0],
            "ts": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]),
        }
    )
    result = ingest_frame(con, frame, "f", source="test frame")
    assert (result.format, result.rows_loaded, result.rows_rejected) == ("frame", 2, 1)
    assert rejected(con) == [(3, None, "missing user")]
    assert ingest_frame(con, frame, "f", source="again").skipped
    with pytest.raises(IngestError, match="missing columns"):
        ingest_frame(con, frame.drop(columns="ts"), "f", source="no ts")


def test_ml_latest_small_reference_file(con):
    path = shared_dataset("ml-latest-small") / "ratings.csv"
    result = ingest_file(con, path, "mls")
    assert (result.format, result.rows_loaded, result.rows_rejected) == ("ml-latest", 100_836, 0)
    report = stage(con, "mls")
    assert (report.n_users, report.n_items) == (610, 9_724)


def test_csv_empty_fields_count_wherever_they_are(con, tmp_path):
    text = (
        "note,user,item,rating,timestamp\n"
        ",u1,i1,,1600000000\n"  # empty first and middle field
        "n,u2,i2,4,1600000001\n"
        ',u3,"i, 3",5,1600000002\n'
        "x,,i4,3,1600000003\n"  # empty user: a missing user, not a short row
        "x,u5,i5,3,\n"  # empty last field
        ",u6,i6,3\n"  # really one field short
    )
    path = write(tmp_path, "notes.csv", text)
    result = ingest_file(con, path, "n")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (6, 3, 3)
    assert [row[:2] + (row[4],) for row in raw(con, "n")] == [("u1", "i1", 2), ("u2", "i2", 3), ("u3", "i, 3", 4)]
    assert rejected(con) == [
        (5, "x,,i4,3,1600000003", "missing user"),
        (6, "x,u5,i5,3,", "missing timestamp"),
        (7, ",u6,i6,3", "expected 5 fields, found 4"),
    ]


def test_pandas_to_csv_file_with_unnamed_index_column(con, tmp_path):
    path = tmp_path / "frame.csv"
    pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "rating": [5, 3], "timestamp": [1600000000, 1600000001]}).to_csv(path)
    assert path.read_text().splitlines()[0] == ",user,item,rating,timestamp"
    assert ingest_file(con, path, "p").rows_loaded == 2
    assert [row[:3] for row in raw(con, "p")] == [("a", "x", 5.0), ("b", "y", 3.0)]


def test_options_are_checked_before_the_reingest_skip(con, tmp_path):
    path = write(tmp_path, "ratings.csv", MLLATEST)
    first = ingest_file(con, path, "m")
    assert first.format == "ml-latest"
    mapping = {"user": "userId", "item": "movieId", "timestamp": "timestamp"}
    cases = [
        ({"fmt": "xyz"}, "unknown format 'xyz'"),
        ({"fmt": "csv", "columns": {**mapping, "user": "nosuchcol"}}, "has no column 'nosuchcol' (mapped to user)"),
        ({"fmt": "ml-latest", "columns": mapping}, "format ml-latest has fixed columns; a column mapping or delimiter is only for csv and parquet"),
        ({"fmt": "csv", "columns": mapping},
         f"has the content of batch {first.batch_id} of dataset 'm' ({path}), ingested as format ml-latest, not csv"),
    ]
    for options, message in cases:
        with pytest.raises(IngestError, match=re.escape(message)) as error:
            ingest_file(con, path, "m", **options)
        assert_one_line_naming(error, path)
    assert ingest_file(con, path, "m").skipped
    assert ingest_file(con, path, "m", columns=mapping).skipped  # detected as ml-latest: a mapping meant for csv files is not its
    assert counts(con) == (1, 3, 0)


def test_the_same_content_with_another_mapping_is_refused_until_its_batch_is_removed(con, tmp_path):
    from diffrec_core.ingest import remove_batch

    path = write(tmp_path, "log.csv", "a,b,rating,timestamp\nu1,i1,5,1600000000\nu2,i2,4,1600000100\nbad\n")
    swapped = ingest_file(con, path, "s", columns={"user": "b", "item": "a"})  # users and items swapped by mistake
    assert raw(con, "s")[0][:2] == ("i1", "u1") and ingest_file(con, path, "s", columns={"user": "b", "item": "a"}).skipped
    with pytest.raises(IngestError, match=re.escape(
            f"ingested with columns user=b, item=a, rating=rating, timestamp=timestamp, delimiter ',', not columns user=a, "
            f"item=b, rating=rating, timestamp=timestamp, delimiter ',': remove that batch first (diffrec remove-batch "
            f"{swapped.batch_id})")) as error:
        ingest_file(con, path, "s", columns={"user": "a", "item": "b"})
    assert_one_line_naming(error, path)
    assert counts(con) == (1, 2, 1)
    assert remove_batch(con, swapped.batch_id).rows_loaded == 2
    assert counts(con) == (0, 0, 0)
    again = ingest_file(con, path, "s", columns={"user": "a", "item": "b"})
    assert not again.skipped and raw(con, "s")[0][:2] == ("u1", "i1")
    with pytest.raises(ValueError, match="no ingest batch 999 in this warehouse"):
        remove_batch(con, 999)


def test_mapping_needs_one_distinct_column_per_field(con, tmp_path):
    path = write(tmp_path, "log.csv", "user,item,timestamp\nu,i,1600000000\n")
    with pytest.raises(IngestError, match="maps user and item to the same column 'user'") as error:
        ingest_file(con, path, "x", columns={"user": "user", "item": "user", "timestamp": "timestamp"})
    assert_one_line_naming(error, path)
    repeated = write(tmp_path, "repeated.csv", "user,item,user,timestamp\nu1,i,u2,1600000000\n")
    with pytest.raises(IngestError, match="more than one column named 'user'") as error:
        ingest_file(con, repeated, "x")
    assert_one_line_naming(error, repeated)
    assert counts(con) == (0, 0, 0)


def test_csv_lines_the_csv_module_cannot_split_are_rows_not_crashes(con, tmp_path):
    path = write(tmp_path, "odd.csv", "user,item,timestamp\nu1,i1,1600000000\nu2,i2\r3,1600000001\n"
                 + "u3," + "x" * 200_000 + ",1600000002\n")
    result = ingest_file(con, path, "o")  # csv refuses a lone carriage return and fields over 131,072 characters
    assert (result.rows_loaded, result.rows_rejected) == (3, 0)
    assert [len(key) for _, key, *_ in raw(con, "o")] == [2, 4, 200_000]  # 'i2\r3': one line is one row


def test_a_partial_mapping_takes_the_default_column_names_for_the_other_fields(con, tmp_path):
    path = write(tmp_path, "log.csv", "uid,item,stars,timestamp\nu1,i1,5,1600000000\nu2,i2,3,1600000100\n")
    result = ingest_file(con, path, "p", columns={"user": "uid", "rating": "stars"})
    assert result.rows_loaded == 2
    assert con.execute("select user_key, item_key, rating from raw_interactions order by user_key").fetchall() == \
        [("u1", "i1", 5.0), ("u2", "i2", 3.0)]
    no_rating = write(tmp_path, "no-rating.csv", "uid,item,timestamp\nu1,i9,1600000000\n")
    assert ingest_file(con, no_rating, "p", columns={"user": "uid"}).rows_loaded == 1  # rating stays optional
    with pytest.raises(IngestError, match="names no column for 'item'") as error:  # 'item' is taken by user
        ingest_file(con, write(tmp_path, "swap.csv", "user,item,timestamp\nu,i,1600000000\n"), "q", columns={"user": "item"})
    assert_one_line_naming(error, tmp_path / "swap.csv")
    with pytest.raises(IngestError, match="has no column 'timestamp' \\(mapped to timestamp\\)"):
        ingest_file(con, write(tmp_path, "no-time.csv", "uid,item\nu,i\n"), "q", columns={"user": "uid"})


def test_float_ids_from_typed_sources_match_text_ids(con, tmp_path):
    path = tmp_path / "floats.parquet"
    pq.write_table(
        pa.table({
            "user": pa.array([1.0, 2.0, float("nan"), float("inf"), None], pa.float64()),
            "item": pa.array([10.0, 2.5, 3.0, 4.0, 5.0], pa.float64()),
            "timestamp": [1600000000] * 5,
        }),
        path,
    )
    result = ingest_file(con, path, "f")
    assert (result.rows_loaded, result.rows_rejected) == (2, 3)
    assert [row[:2] for row in raw(con, "f")] == [("1", "10"), ("2", "2.5")]
    assert [(line, reason) for line, _, reason in rejected(con)] == [
        (3, "non-finite user"), (4, "non-finite user"), (5, "missing user"),
    ]
    ingest_file(con, write(tmp_path, "more.csv", "user,item,timestamp\n1,10,1600000001\n"), "f")
    assert stage(con, "f").n_users == 2  # '1' from the csv is the parquet's 1.0
    frame = pd.DataFrame({"user_key": [7.0], "item_key": ["x"], "rating": [1.0], "ts": pd.to_datetime(["2020-01-01"])})
    ingest_frame(con, frame, "fr", source="floats")
    assert raw(con, "fr")[0][:2] == ("7", "x")


def test_list_id_column_is_refused_naming_it(con, tmp_path):
    path = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [[1], [2, 3]], "timestamp": [1, 2]}), path)
    with pytest.raises(IngestError, match=r"column 'item' \(mapped to item\) holds BIGINT\[\] values") as error:
        ingest_file(con, path, "l")
    assert_one_line_naming(error, path)
    frame = pd.DataFrame({"user_key": [["a"]], "item_key": ["x"], "rating": [1.0], "ts": pd.to_datetime(["2020-01-01"])})
    with pytest.raises(IngestError, match="frame lists: column 'user_key' \\(mapped to user\\) holds VARCHAR\\[\\]"):
        ingest_frame(con, frame, "l", source="lists")
    assert counts(con) == (0, 0, 0)


def test_non_utf8_file_names_file_and_line(con, tmp_path):
    body = "user,item,timestamp\nu1,i1,1600000000\nCaf\xe9,i1,1600000000\n"
    for name, options, text in [
        ("latin.csv", {}, body),
        ("latin.dat", {"fmt": "ml-1m"}, "1::1::5::978300760\n1::Caf\xe9::5::978300760\n"),
    ]:
        path = write(tmp_path, name, text, encoding="latin-1")
        line = 3 if name.endswith(".csv") else 2
        with pytest.raises(IngestError) as error:
            ingest_file(con, path, "x", **options)
        assert str(error.value) == f"{path} is not UTF-8 text: line {line} has the byte 0xe9; save the file as UTF-8"
    assert counts(con) == (0, 0, 0)
