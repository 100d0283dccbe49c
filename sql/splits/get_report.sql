-- splits/get_report: the stored report of one (dataset, setting) split.
select
    train_rows,
    valid_rows,
    test_rows,
    valid_rows_excluded,
    test_rows_excluded,
    users_excluded,
    items_excluded,
    created_at
from split_reports
where dataset = $dataset
  and setting = $setting;
