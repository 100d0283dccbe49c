-- staging/history_range: staged (user, item) rows of users $user_start <= user_id < $user_stop
-- kept by the rating filter (as staging/history), with each row's time t (epoch microseconds).
select user_id, item_id, epoch_us(ts) as t
from interactions
where dataset = $dataset
  and user_id >= $user_start
  and user_id < $user_stop
  and (cast($min_rating as double) is null or rating is null or rating >= cast($min_rating as double));
