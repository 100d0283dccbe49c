-- splits/import_presplit: the split report of an imported pre-made split (method 'imported'; temp table presplit_rows).
insert into split_reports (
    dataset, setting, method, min_rating, train_rows, valid_rows, test_rows,
    valid_rows_excluded, test_rows_excluded, users_excluded, items_excluded, created_at
)
with train as (
    select distinct user_id, item_id from presplit_rows where split = 'train'
),
held_out as (
    select
        r.split,
        r.user_id,
        r.item_id,
        r.user_id in (select user_id from train) as user_seen,
        r.item_id in (select item_id from train) as item_seen
    from presplit_rows as r
    where r.split <> 'train'
)
select
    $dataset, $setting, 'imported', cast(null as double),
    (select count(*) from presplit_rows where split = 'train'),
    (select count(*) from held_out where split = 'valid'),
    (select count(*) from held_out where split = 'test'),
    (select count(*) from held_out where split = 'valid' and not (user_seen and item_seen)),
    (select count(*) from held_out where split = 'test' and not (user_seen and item_seen)),
    (select count(distinct user_id) from held_out where not user_seen),
    (select count(distinct item_id) from held_out where not item_seen),
    cast(now() as timestamp);
