-- quality/split_setting: how a (dataset, setting) split was made (method), its rating filter and
-- its configured ratios (null for imported splits and for splits recorded before ratios were kept).
select method, min_rating, train_ratio, valid_ratio, test_ratio
from split_reports
where dataset = $dataset
  and setting = $setting;
