-- raw/describe_frame: column name and DuckDB type of the registered frame `_ingest_frame`.
select column_name, column_type
from (describe select * from _ingest_frame);
