-- outputs/count_recommendations: how many recommendations a run has for a dataset.
select count(*) as n
from recommendations
where run_id = $run_id
  and dataset = $dataset;
