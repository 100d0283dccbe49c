-- outputs/count_recommendations: how many recommendations a run would serve for a dataset (its
-- pending list where it has one).
select count(*) as n
from recommendations_candidate
where run_id = $run_id
  and dataset = $dataset;
