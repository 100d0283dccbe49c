-- schema/03_splits: train/valid/test interactions per (dataset, setting) and a report per split.
create table if not exists split_interactions (
    dataset varchar not null,
    setting varchar not null,         -- clean | noisy-natural | noisy-random-p | temporal | ...
    split   varchar not null check (split in ('train', 'valid', 'test')),
    user_id integer not null,
    item_id integer not null,
    ts      timestamp not null,
    weight  double not null default 1
);

create table if not exists split_reports (
    dataset             varchar not null,
    setting             varchar not null,
    method              varchar not null,   -- global | per_user
    min_rating          double,
    train_rows          bigint not null,
    valid_rows          bigint not null,
    test_rows           bigint not null,
    valid_rows_excluded bigint not null,    -- valid rows whose user or item is not in train
    test_rows_excluded  bigint not null,
    users_excluded      bigint not null,    -- users seen in valid/test only
    items_excluded      bigint not null,    -- items seen in valid/test only
    created_at          timestamp not null,
    train_ratio         double,             -- the configured ratios (null for imported splits)
    valid_ratio         double,
    test_ratio          double,
    primary key (dataset, setting)
);
-- Warehouses made before the ratios were recorded gain the columns (null: checked against 7:1:2).
alter table split_reports add column if not exists train_ratio double;
alter table split_reports add column if not exists valid_ratio double;
alter table split_reports add column if not exists test_ratio double;
