-- nightly/run_batches: the batch ids linked to a run in one role.
select batch_id
from run_inputs
where run_id = $run_id
  and role = $role
order by batch_id;
