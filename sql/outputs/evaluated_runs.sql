-- outputs/evaluated_runs: the runs of a dataset that have test metrics (evaluated or published), for comparison reports.
select
    run_id,
    setting,
    model,
    metrics,
    status,
    finished_at
from model_runs
where dataset = $dataset
  and status in ('evaluated', 'published')
order by finished_at, run_id;
