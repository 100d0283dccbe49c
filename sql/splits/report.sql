-- splits/report: counts of one (dataset, setting) split, including the valid/test rows,
-- users and items excluded from evaluation because they never appear in train, and the configured
-- ratios (null for imported splits).
insert into split_reports (
    dataset, setting, method, min_rating, train_rows, valid_rows, test_rows,
    valid_rows_excluded, test_rows_excluded, users_excluded, items_excluded, created_at,
    train_ratio, valid_ratio, test_ratio
)
with split_rows as (
    select split, user_id, item_id
    from split_interactions
    where dataset = $dataset
      and setting = $setting
),
train_users as (
    select distinct user_id from split_rows where split = 'train'
),
train_items as (
    select distinct item_id from split_rows where split = 'train'
),
held_out as (
    select
        r.split,
        r.user_id,
        r.item_id,
        tu.user_id is not null as user_seen,
        ti.item_id is not null as item_seen
    from split_rows as r
    left join train_users as tu on tu.user_id = r.user_id
    left join train_items as ti on ti.item_id = r.item_id
    where r.split <> 'train'
)
select
    $dataset,
    $setting,
    $method,
    cast($min_rating as double),
    (select count(*) from split_rows where split = 'train'),
    (select count(*) from held_out where split = 'valid'),
    (select count(*) from held_out where split = 'test'),
    (select count(*) from held_out where split = 'valid' and not (user_seen and item_seen)),
    (select count(*) from held_out where split = 'test' and not (user_seen and item_seen)),
    (select count(distinct user_id) from held_out where not user_seen),
    (select count(distinct item_id) from held_out where not item_seen),
    cast(now() as timestamp),
    cast($train_ratio as double),
    cast($valid_ratio as double),
    cast($test_ratio as double);
