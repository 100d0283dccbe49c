-- raw/parse_frame: a registered in-memory frame `_ingest_frame` (user_key, item_key,
-- rating, ts, _line_no) as text fields. Makes temp table ingest_fields.
create or replace temp table ingest_fields as
select
    _line_no                        as line_no,
    null::varchar                   as raw_text,
    1                               as n_fields,
    1                               as expected_fields,
    trim(cast(user_key as varchar)) as user_text,
    trim(cast(item_key as varchar)) as item_text,
    cast(rating as varchar)         as rating_text,
    cast(ts as varchar)             as ts_text,
    false                           as rating_required
from _ingest_frame;
