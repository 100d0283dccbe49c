-- staging/interactions: one row per (user, item) of a dataset with dense ids: the user's
-- latest interaction with the item (ties: later batch, then later line in the file).
insert into interactions (dataset, user_id, item_id, rating, ts)
with ranked as (
    select
        user_key,
        item_key,
        rating,
        ts,
        row_number() over (
            partition by user_key, item_key
            order by ts desc, batch_id desc, line_no desc
        ) as recency
    from raw_interactions
    where dataset = $dataset
),
latest as (
    select user_key, item_key, rating, ts
    from ranked
    where recency = 1
)
select
    $dataset as dataset,
    u.user_id,
    i.item_id,
    l.rating,
    l.ts
from latest as l
inner join users as u
    on u.dataset = $dataset
   and u.user_key = l.user_key
inner join items as i
    on i.dataset = $dataset
   and i.item_key = l.item_key
order by u.user_id, l.ts, i.item_id;
