-- raw/parse_parquet: the mapped columns of a Parquet file as text fields, numbered by row
-- ($has_rating = false: no rating column; $rating_col is then ignored). Makes temp table ingest_fields.
create or replace temp table ingest_fields as
with source as (
    select
        p,
        file_row_number + 1 as line_no
    from read_parquet($path, file_row_number = true) as p
)
select
    line_no,
    cast(p as varchar)                     as raw_text,
    1                                      as n_fields,
    1                                      as expected_fields,
    trim(cast(p[$user_col] as varchar))    as user_text,
    trim(cast(p[$item_col] as varchar))    as item_text,
    case when $has_rating then trim(cast(p[$rating_col] as varchar)) end as rating_text,
    trim(cast(p[$ts_col] as varchar))      as ts_text,
    false                                  as rating_required
from source;
