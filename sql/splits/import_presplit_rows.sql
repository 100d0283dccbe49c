-- splits/import_presplit_rows: one setting of a dataset from pre-made train/valid/test rows (temp table presplit_rows).
insert into split_interactions (dataset, setting, split, user_id, item_id, ts, weight)
select $dataset, $setting, split, user_id, item_id, ts, 1.0
from presplit_rows;
