-- splits/setting_min_rating: the rating filter a split setting was made with (null = keep every row).
select min_rating
from split_reports
where dataset = $dataset
  and setting = $setting;
