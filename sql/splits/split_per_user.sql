-- splits/split_per_user: each user's staged interactions in time order (tie-break item_id)
-- split by the given ratios; a user with >= 3 interactions gets at least one in every split,
-- a user with fewer keeps them all in train. Rows with a rating below $min_rating are
-- dropped; null ratings (implicit feedback) are kept.
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
        row_number() over (partition by user_id order by ts, item_id) as position,
        count(*) over (partition by user_id)                          as n
    from kept
),
train_bounds as (
    select
        *,
        case
            when n < 3 then n
            else greatest(1, least(n - 2, cast(round(n * $train_ratio) as bigint)))
        end as n_train
    from ordered
),
bounds as (
    select
        *,
        case
            when n < 3 then n
            else greatest(n_train + 1, least(n - 1, cast(round(n * ($train_ratio + $valid_ratio)) as bigint)))
        end as n_train_valid
    from train_bounds
)
select
    $dataset as dataset,
    $setting as setting,
    case
        when position <= n_train then 'train'
        when position <= n_train_valid then 'valid'
        else 'test'
    end as split,
    user_id,
    item_id,
    ts,
    1.0 as weight
from bounds;
