-- raw/insert_presplit_batch: record one imported set of pre-made split files; returns its batch_id.
insert into ingest_batches (
    batch_id, dataset, source, format, sha256,
    rows_read, rows_loaded, rows_rejected, started_at, finished_at
)
select
    nextval('ingest_batch_seq'), $dataset, $source, 'diffrec-splits', $sha256,
    $rows, $rows, 0, $started_at, cast(now() as timestamp)
returning batch_id;
