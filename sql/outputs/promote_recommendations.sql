-- outputs/promote_recommendations: a run's pending top-K becomes its stored one (the caller has
-- deleted the stored rows and deletes the pending ones, in the same transaction).
insert into recommendations (run_id, dataset, user_key, item_key, rank, score)
select run_id, dataset, user_key, item_key, rank, score
from recommendations_pending
where run_id = $run_id
  and dataset = $dataset;
