-- raw/insert_batch: record one ingested file (counts from ingest_typed); returns its batch_id.
insert into ingest_batches (
    batch_id, dataset, source, format, sha256,
    rows_read, rows_loaded, rows_rejected, started_at, finished_at, options
)
with counts as (
    select
        count(*)                                   as rows_read,
        count(*) filter (where reason is null)     as rows_loaded,
        count(*) filter (where reason is not null) as rows_rejected
    from ingest_typed
)
select
    nextval('ingest_batch_seq'), $dataset, $source, $format, $sha256,
    rows_read, rows_loaded, rows_rejected, $started_at, cast(now() as timestamp), $options
from counts
returning batch_id;
