-- outputs/latest_run: the newest model run of a dataset that has a checkpoint and was not refused
-- (a run a regression or quality gate rejected is served only when named).
select run_id
from model_runs
where dataset = $dataset
  and checkpoint_path is not null
  and status not in ('failed', 'rejected')
order by started_at desc, run_id desc
limit 1;
