-- raw/parse_csv: the rows of a generic delimited file with a header, split in Python by the
-- csv module and registered as `_ingest_csv` (line_no, raw_text, n_fields and <key>_text for
-- user, item, rating, timestamp: null when unmapped or the row has the wrong number of fields).
-- Makes temp table ingest_fields.
create or replace temp table ingest_fields as
select
    line_no,
    raw_text,
    n_fields,
    $n_columns     as expected_fields,
    user_text,
    item_text,
    rating_text,
    timestamp_text as ts_text,
    false          as rating_required
from _ingest_csv;
