-- raw/get_batch: one ingest batch by id.
select batch_id, dataset, source, format, sha256, rows_read, rows_loaded, rows_rejected
from ingest_batches
where batch_id = $batch_id;
