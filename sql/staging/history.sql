-- staging/history: every staged (user, item) of a dataset kept by the rating filter
-- (rating >= $min_rating, or null rating = implicit; no filter when $min_rating is null),
-- for production inference, with each row's time t (epoch microseconds) for time weights.
select user_id, item_id, epoch_us(ts) as t
from interactions
where dataset = $dataset
  and (cast($min_rating as double) is null or rating is null or rating >= cast($min_rating as double));
