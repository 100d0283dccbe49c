-- outputs/record_inputs: link a run to every batch of its dataset ingested so far, in a role
-- ('train': the data it was trained on; 'recommend': the history its recommendations used).
insert into run_inputs (run_id, dataset, batch_id, role, recorded_at)
select $run_id, dataset, batch_id, $role, cast(now() as timestamp)
from ingest_batches
where dataset = $dataset
on conflict do nothing;
