-- splits/noise_base: the train and valid rows of one (dataset, setting) split (user, part code
-- 0 train / 1 valid, time in epoch microseconds), in a fixed order, for drawing random noise.
select
    user_id,
    case split when 'train' then 0 else 1 end as part,
    epoch_us(ts)                              as t
from split_interactions
where dataset = $dataset
  and setting = $setting
  and split in ('train', 'valid')
order by user_id, part, t, item_id;
