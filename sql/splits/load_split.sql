-- splits/load_split: the rows of one (dataset, setting) split for the model, as part codes
-- (0 train, 1 valid, 2 test) with each row's time t (epoch microseconds, orders the T-variants'
-- time weights); valid/test keep only evaluable rows (user and item in train).
with split_rows as (
    select split, user_id, item_id, ts
    from split_interactions
    where dataset = $dataset
      and setting = $setting
),
train_users as (
    select distinct user_id from split_rows where split = 'train'
),
train_items as (
    select distinct item_id from split_rows where split = 'train'
)
select
    case r.split when 'train' then 0 when 'valid' then 1 else 2 end as part,
    r.user_id,
    r.item_id,
    epoch_us(r.ts) as t
from split_rows as r
where r.split = 'train'
   or (
        r.user_id in (select user_id from train_users)
        and r.item_id in (select item_id from train_items)
   );
