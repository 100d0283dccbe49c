-- outputs/user_recommendations: one user's published list, best first.
select rank, item_key, score, run_id
from latest_recommendations
where dataset = $dataset
  and user_key = $user_key
order by rank;
