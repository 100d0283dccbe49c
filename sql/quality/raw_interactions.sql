-- quality/raw_interactions: one row per raw interaction of a dataset, with the columns the
-- raw_interactions suite checks: the timestamp as Unix seconds (null when it is not a finite,
-- parseable time) and whether the row repeats an earlier row exactly (same user, item,
-- rating and timestamp).
with raw as (
    select
        batch_id,
        line_no,
        user_key,
        item_key,
        rating,
        ts,
        row_number() over (
            partition by user_key, item_key, rating, ts
            order by batch_id, line_no
        ) as copy_no
    from raw_interactions
    where dataset = $dataset
)
select
    batch_id,
    line_no,
    user_key,
    item_key,
    rating,
    cast(ts as varchar)                             as ts,
    case when isfinite(ts) then epoch(ts) end       as ts_epoch_seconds,
    cast(copy_no > 1 as integer)                    as is_exact_duplicate
from raw
order by batch_id, line_no;
