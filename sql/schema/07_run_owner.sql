-- schema/07_run_owner: which process trains a 'running' run (host, pid and the process's start
-- time, so a reused pid is not taken for it), so a run whose process died without finishing
-- (SIGKILL, out of memory, a lost machine) is marked failed instead of staying 'running'.
alter table model_runs add column if not exists host varchar;
alter table model_runs add column if not exists pid integer;
alter table model_runs add column if not exists process_started double;  -- seconds since the epoch
