-- schema/08_ingest_options: the reader options a file batch was ingested with (JSON: the column mapping
-- and delimiter the file was read with; {} for fixed formats; null for batches ingested before this column),
-- so the same content given again with other options is refused instead of skipped as already loaded.
alter table ingest_batches add column if not exists options varchar;
