-- raw/dataset_batches: every batch id ingested for a dataset.
select batch_id
from ingest_batches
where dataset = $dataset
order by batch_id;
