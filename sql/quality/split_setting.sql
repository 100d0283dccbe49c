-- quality/split_setting: how a (dataset, setting) split was made (method) and its rating filter.
select method, min_rating
from split_reports
where dataset = $dataset
  and setting = $setting;
