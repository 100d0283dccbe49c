-- raw/insert_rejected: keep the bad rows of ingest_typed with their reason.
insert into rejected_rows (batch_id, line_no, raw_text, reason)
select $batch_id, line_no, raw_text, reason
from ingest_typed
where reason is not null
order by line_no;
