-- outputs/get_model_run: one model run by id.
select run_id, dataset, setting, model, config, metrics, checkpoint_path, status
from model_runs
where run_id = $run_id;
