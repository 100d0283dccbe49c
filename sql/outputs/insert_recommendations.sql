-- outputs/insert_recommendations: load the registered frame `_recommendations_frame` as one run's pending top-K.
insert into recommendations_pending (run_id, dataset, user_key, item_key, rank, score)
with frame as (
    select
        cast(user_key as varchar) as user_key,
        cast(item_key as varchar) as item_key,
        cast(rank as integer)     as rank,
        cast(score as double)     as score
    from _recommendations_frame
)
select $run_id, $dataset, user_key, item_key, rank, score
from frame;
