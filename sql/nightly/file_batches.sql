-- nightly/file_batches: every file batch of a dataset, to tell a landing file that changed after it was ingested.
select batch_id, source, sha256, started_at
from ingest_batches
where dataset = $dataset
order by batch_id;
