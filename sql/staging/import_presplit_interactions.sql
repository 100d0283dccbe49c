-- staging/import_presplit_interactions: staged interactions of a pre-split dataset (temp table presplit_rows; no ratings).
insert into interactions (dataset, user_id, item_id, rating, ts)
select $dataset, user_id, item_id, cast(null as double), ts
from presplit_rows;
