-- schema/02_staging: typed, deduplicated interactions with dense integer ids per dataset.
create table if not exists users (
    dataset  varchar not null,
    user_id  integer not null,        -- dense, from 0
    user_key varchar not null,
    primary key (dataset, user_id)
);

create table if not exists items (
    dataset  varchar not null,
    item_id  integer not null,        -- dense, from 0
    item_key varchar not null,
    primary key (dataset, item_id)
);

create table if not exists interactions (
    dataset varchar not null,
    user_id integer not null,
    item_id integer not null,
    rating  double,
    ts      timestamp not null
);
