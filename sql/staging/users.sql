-- staging/users: dense user ids (from 0) for one dataset from its raw interactions.
-- Keys that look like integers sort numerically first, the rest by text: deterministic.
insert into users (dataset, user_id, user_key)
with keys as (
    select distinct user_key
    from raw_interactions
    where dataset = $dataset
)
select
    $dataset as dataset,
    cast(dense_rank() over (order by try_cast(user_key as bigint) nulls last, user_key) - 1 as integer) as user_id,
    user_key
from keys;
