-- splits/split_global: global chronological split of a dataset's staged interactions into
-- train/valid/test by the given ratios (tie-break ts, user_id, item_id). Rows with a rating
-- below $min_rating are dropped; null ratings (implicit feedback) are kept.
insert into split_interactions (dataset, setting, split, user_id, item_id, ts, weight)
with kept as (
    select user_id, item_id, ts
    from interactions
    where dataset = $dataset
      and (cast($min_rating as double) is null or rating is null or rating >= cast($min_rating as double))
),
ordered as (
    select
        user_id,
        item_id,
        ts,
        row_number() over (order by ts, user_id, item_id) as position,
        count(*) over ()                                  as n
    from kept
)
select
    $dataset as dataset,
    $setting as setting,
    case
        when position <= round(n * $train_ratio) then 'train'
        when position <= round(n * ($train_ratio + $valid_ratio)) then 'valid'
        else 'test'
    end as split,
    user_id,
    item_id,
    ts,
    1.0 as weight
from ordered;
