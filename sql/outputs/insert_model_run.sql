-- outputs/insert_model_run: one row per training/inference run.
insert into model_runs (
    run_id, dataset, setting, model, config, metrics, checkpoint_path, status, started_at, finished_at
)
values (
    $run_id, $dataset, $setting, $model, cast($config as json), cast($metrics as json),
    $checkpoint_path, $status, cast($started_at as timestamp), cast($finished_at as timestamp)
);
