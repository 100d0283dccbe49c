-- splits/noise_natural: natural noise (paper §4.1) added to one (dataset, setting) split that
-- already holds its clean rows: a user's interactions rated below $min_rating become false
-- positives in train or valid. A low-rated row joins train when it is no later than the last
-- clean train row (of the whole split for the global method, of the user for per_user), valid
-- when no later than the last clean valid row; rows of the test window are left out, so the
-- test set stays the clean one. Each user receives at most round($noise_ratio * their clean
-- rows in that split) per split, picked by a hash seeded with $seed.
insert into split_interactions (dataset, setting, split, user_id, item_id, ts, weight)
with clean as (
    select split, user_id, ts
    from split_interactions
    where dataset = $dataset
      and setting = $setting
),
bounds_global as (
    select
        max(ts) filter (where split = 'train') as train_end,
        max(ts) filter (where split = 'valid') as valid_end
    from clean
),
bounds_user as (
    select
        user_id,
        max(ts) filter (where split = 'train')   as train_end,
        max(ts) filter (where split = 'valid')   as valid_end,
        count(*) filter (where split = 'train') as n_train,
        count(*) filter (where split = 'valid') as n_valid
    from clean
    group by user_id
),
low as (
    select user_id, item_id, ts
    from interactions
    where dataset = $dataset
      and rating < cast($min_rating as double)
),
placed as (
    select
        l.user_id,
        l.item_id,
        l.ts,
        case
            when l.ts <= (case when $per_user then u.train_end else g.train_end end) then 'train'
            when l.ts <= (case when $per_user then u.valid_end else g.valid_end end) then 'valid'
        end as split,
        u.n_train,
        u.n_valid
    from low as l
    inner join bounds_user as u on u.user_id = l.user_id
    cross join bounds_global as g
),
ranked as (
    select
        *,
        row_number() over (
            partition by user_id, split
            order by hash(cast($seed as bigint), user_id, item_id), item_id
        ) as pick
    from placed
    where split is not null
)
select
    $dataset as dataset,
    $setting as setting,
    split,
    user_id,
    item_id,
    ts,
    1.0 as weight
from ranked
where pick <= cast(round($noise_ratio * case split when 'train' then n_train else n_valid end) as bigint);
