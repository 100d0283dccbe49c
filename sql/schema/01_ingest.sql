-- schema/01_ingest: raw layer. One row per ingested file, the rows as ingested
-- (append-only), and the rows that could not be parsed.
create sequence if not exists ingest_batch_seq start 1;

create table if not exists ingest_batches (
    batch_id      bigint primary key,
    dataset       varchar not null,
    source        varchar not null,   -- file path, or a description for in-memory frames
    format        varchar not null,   -- ml-1m | ml-100k | ml-latest | csv | parquet | frame
    sha256        varchar not null,   -- content hash (frames: hash of the generator config)
    rows_read     bigint not null,
    rows_loaded   bigint not null,
    rows_rejected bigint not null,
    started_at    timestamp not null,
    finished_at   timestamp not null,
    unique (dataset, sha256)
);

create table if not exists raw_interactions (
    dataset  varchar not null,
    user_key varchar not null,
    item_key varchar not null,
    rating   double,                  -- null for implicit feedback
    ts       timestamp not null,      -- UTC
    batch_id bigint not null,
    line_no  bigint not null          -- 1-based line (row for parquet/frames) in the source
);

create table if not exists rejected_rows (
    batch_id bigint not null,
    line_no  bigint not null,
    raw_text varchar,
    reason   varchar not null
);
