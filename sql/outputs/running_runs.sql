-- outputs/running_runs: the runs still 'running' that a process on $host owns, with that process.
select run_id, pid, process_started
from model_runs
where status = 'running'
  and host = $host;
