-- outputs/mark_evaluated: store a run's metrics after an evaluation. A `trained` run becomes
-- `evaluated`; a run that is `published` or that a gate `rejected` keeps its status (evaluating a
-- model again does not undo a decision about it).
update model_runs
set metrics = cast($metrics as json),
    status  = case when status = 'trained' then 'evaluated' else status end
where run_id = $run_id;
