-- quality/split_interactions: one row per row of a (dataset, setting) split, with the columns
-- the split_interactions suite checks: whether its ids are staged, in how many splits its
-- (user, item) pair appears, how far its split's share of the clean rows (staged interactions
-- kept by the split's $min_rating; noise settings add other rows) is from the configured ratio, the
-- latest timestamp of the earlier splits (chronological order), and, for test rows the
-- evaluation uses (the registered relation `_evaluation_rows`, part 2 = test, from
-- splits/load_split), whether the item appears in train.
with split_rows as (
    select
        s.split,
        s.user_id,
        s.item_id,
        s.ts,
        i.user_id is not null
            and (cast($min_rating as double) is null or i.rating is null or i.rating >= cast($min_rating as double)) as clean
    from split_interactions as s
    left join interactions as i
        on i.dataset = s.dataset
       and i.user_id = s.user_id
       and i.item_id = s.item_id
    where s.dataset = $dataset
      and s.setting = $setting
),
pair_splits as (
    select user_id, item_id, count(distinct split) as splits_holding_pair
    from split_rows
    group by user_id, item_id
),
shares as (
    select
        split,
        count(*) / sum(count(*)) over () as share
    from split_rows
    where clean
    group by split
),
bounds as (
    select
        max(case when split = 'train' then ts end)              as train_max_ts,
        max(case when split in ('train', 'valid') then ts end)  as train_valid_max_ts
    from split_rows
),
train_items as (
    select distinct item_id from split_rows where split = 'train'
),
evaluated_test as (
    select distinct user_id, item_id from _evaluation_rows where part = 2
)
select
    r.split,
    r.user_id,
    r.item_id,
    cast(r.ts as varchar)                                        as ts,
    case when isfinite(r.ts) then epoch(r.ts) end                as ts_epoch_seconds,
    u.user_id is not null                                        as user_staged,
    i.item_id is not null                                        as item_staged,
    p.splits_holding_pair,
    case when r.clean then abs(s.share - case r.split
        when 'train' then cast($train_ratio as double)
        when 'valid' then cast($valid_ratio as double)
        else cast($test_ratio as double)
    end) end                                                     as split_share_deviation,
    case r.split
        when 'valid' then epoch(b.train_max_ts)
        when 'test' then epoch(b.train_valid_max_ts)
    end                                                          as earlier_splits_max_ts_epoch_seconds,
    case
        when e.item_id is null then null
        else ti.item_id is not null
    end                                                          as evaluated_test_item_in_train
from split_rows as r
cross join bounds as b
inner join pair_splits as p
    on p.user_id = r.user_id
   and p.item_id = r.item_id
left join shares as s
    on s.split = r.split
left join users as u
    on u.dataset = $dataset
   and u.user_id = r.user_id
left join items as i
    on i.dataset = $dataset
   and i.item_id = r.item_id
left join train_items as ti
    on ti.item_id = r.item_id
left join evaluated_test as e
    on r.split = 'test'
   and e.user_id = r.user_id
   and e.item_id = r.item_id
order by r.split, r.user_id, r.item_id;
