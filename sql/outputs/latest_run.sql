-- outputs/latest_run: the newest model run of a dataset that has a checkpoint.
select run_id
from model_runs
where dataset = $dataset
  and checkpoint_path is not null
  and status <> 'failed'
order by started_at desc, run_id desc
limit 1;
