-- raw/insert_raw: append the good rows of ingest_typed to raw_interactions.
insert into raw_interactions (dataset, user_key, item_key, rating, ts, batch_id, line_no)
select $dataset, user_key, item_key, rating, ts, $batch_id, line_no
from ingest_typed
where reason is null
order by line_no;
