-- raw/counts: rows read, to load and rejected in ingest_typed.
select
    count(*)                                 as rows_read,
    count(*) filter (where reason is null)   as rows_loaded,
    count(*) filter (where reason is not null) as rows_rejected
from ingest_typed;
