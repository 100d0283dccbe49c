-- outputs/publish_status: inside publish's transaction, $run_id becomes `published`, and the run the
-- dataset published before goes back to `evaluated` (it has test metrics) or `trained`.
update model_runs
set status = case
    when run_id = $run_id then 'published'
    when json_extract(metrics, '$.test') is not null then 'evaluated'
    else 'trained'
end
where dataset = $dataset
  and (run_id = $run_id or status = 'published');
