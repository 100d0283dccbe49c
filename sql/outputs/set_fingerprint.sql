-- outputs/set_fingerprint: record the data fingerprint of a model run.
update model_runs
set data_fingerprint = $fingerprint
where run_id = $run_id;
