-- schema/06_nightly: what the nightly flow needs on top of the outputs layer: each model run's
-- data fingerprint (hash of its train split), and which ingest batches fed each run (lineage).
alter table model_runs add column if not exists data_fingerprint varchar;

create table if not exists run_inputs (
    run_id      varchar not null,
    dataset     varchar not null,
    batch_id    bigint not null,
    role        varchar not null check (role in ('train', 'recommend')),
    recorded_at timestamp not null,
    primary key (run_id, batch_id, role)
);

-- One row naming this warehouse file: data fingerprints include it, so results cached for a
-- warehouse that was deleted and recreated at the same path are never taken for this one's.
create table if not exists warehouse_instance as
select cast(uuid() as varchar) as instance_id, cast(now() as timestamp) as created_at;
