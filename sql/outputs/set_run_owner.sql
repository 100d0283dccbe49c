-- outputs/set_run_owner: the process that trains one run.
update model_runs
set host = $host, pid = $pid, process_started = $process_started
where run_id = $run_id;
