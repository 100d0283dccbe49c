-- outputs/update_model_run: set the non-null given fields of one run.
update model_runs
set
    status          = coalesce($status, status),
    metrics         = coalesce(cast($metrics as json), metrics),
    checkpoint_path = coalesce($checkpoint_path, checkpoint_path),
    finished_at     = coalesce(cast($finished_at as timestamp), finished_at)
where run_id = $run_id;
