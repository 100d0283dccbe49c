-- nightly/reusable_runs: trained runs of a model on data with the given fingerprint,
-- started at or after $since, newest first (the caller also compares their configs).
select run_id, config, checkpoint_path, status, started_at
from model_runs
where dataset = $dataset
  and setting = $setting
  and model = $model
  and data_fingerprint = $fingerprint
  and checkpoint_path is not null
  and status in ('trained', 'evaluated', 'published', 'rejected')
  and started_at >= cast($since as timestamp)
order by started_at desc, run_id desc;
