-- outputs/finished_runs: trained runs of one (dataset, setting) with their config and metrics (for search resumption and selection).
select run_id, config, metrics
from model_runs
where dataset = $dataset
  and setting = $setting
  and checkpoint_path is not null
  and status in ('trained', 'evaluated', 'published');
