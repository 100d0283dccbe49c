-- outputs/finished_runs: trained runs of one (dataset, setting) on the train split with data fingerprint
-- $fingerprint, with their config and metrics (for search resumption and selection: a trial trained on
-- other data is not finished for this data).
select run_id, config, metrics
from model_runs
where dataset = $dataset
  and setting = $setting
  and data_fingerprint = $fingerprint
  and checkpoint_path is not null
  and status in ('trained', 'evaluated', 'published');
