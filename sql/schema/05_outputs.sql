-- schema/05_outputs: model runs, their recommendations, and which run consumers see.
create table if not exists model_runs (
    run_id          varchar primary key,
    dataset         varchar not null,
    setting         varchar not null,
    model           varchar not null,
    config          json,
    metrics         json,
    checkpoint_path varchar,
    status          varchar not null,     -- e.g. running | succeeded | failed
    started_at      timestamp,
    finished_at     timestamp
);

create table if not exists recommendations (
    run_id   varchar not null,
    dataset  varchar not null,
    user_key varchar not null,
    item_key varchar not null,
    rank     integer not null,            -- 1 = best
    score    double not null
);

-- A new list for the run that is published now waits here until it passes its gates and is
-- published: consumers keep reading the old list meanwhile (see warehouse.write_recommendations).
create table if not exists recommendations_pending (
    run_id   varchar not null,
    dataset  varchar not null,
    user_key varchar not null,
    item_key varchar not null,
    rank     integer not null,
    score    double not null
);

create table if not exists published (
    dataset      varchar primary key,
    run_id       varchar not null,
    published_at timestamp not null
);

create or replace view latest_recommendations as
select
    r.run_id,
    r.dataset,
    r.user_key,
    r.item_key,
    r.rank,
    r.score
from recommendations as r
inner join published as p
    on p.dataset = r.dataset
   and p.run_id = r.run_id;

-- recommendations_candidate: what each run would serve if it were published now: its pending list
-- where it has one, else its stored list. Gates and counts read this.
create or replace view recommendations_candidate as
select run_id, dataset, user_key, item_key, rank, score
from recommendations_pending
union all
select r.run_id, r.dataset, r.user_key, r.item_key, r.rank, r.score
from recommendations as r
where not exists (
    select 1 from recommendations_pending as p
    where p.run_id = r.run_id and p.dataset = r.dataset
);
