-- splits/insert_noise: random-noise rows of one (dataset, setting) split from the registered
-- frame `_noise_rows` (split, user_id, item_id, ts).
insert into split_interactions (dataset, setting, split, user_id, item_id, ts, weight)
select
    $dataset as dataset,
    $setting as setting,
    split,
    user_id,
    item_id,
    ts,
    1.0 as weight
from _noise_rows;
