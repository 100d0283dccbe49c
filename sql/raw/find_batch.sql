-- raw/find_batch: an earlier batch of the same content for the same dataset, if any.
select batch_id, source, format, rows_read, rows_loaded, rows_rejected, options
from ingest_batches
where dataset = $dataset
  and sha256 = $sha256;
