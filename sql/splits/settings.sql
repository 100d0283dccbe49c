-- splits/settings: the split settings a dataset has, by name.
select setting from split_reports where dataset = $dataset order by setting;
