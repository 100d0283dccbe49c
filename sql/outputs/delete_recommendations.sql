-- outputs/delete_recommendations: drop a run's recommendations for one dataset (before a rewrite).
delete from recommendations
where run_id = $run_id
  and dataset = $dataset;
