-- staging/items: dense item ids (from 0) for one dataset from its raw interactions.
-- Keys that look like integers sort numerically first, the rest by text: deterministic.
insert into items (dataset, item_id, item_key)
with keys as (
    select distinct item_key
    from raw_interactions
    where dataset = $dataset
)
select
    $dataset as dataset,
    cast(dense_rank() over (order by try_cast(item_key as bigint) nulls last, item_key) - 1 as integer) as item_id,
    item_key
from keys;
