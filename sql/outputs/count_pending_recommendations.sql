-- outputs/count_pending_recommendations: how many pending recommendations a run has for a dataset.
select count(*) as n
from recommendations_pending
where run_id = $run_id
  and dataset = $dataset;
