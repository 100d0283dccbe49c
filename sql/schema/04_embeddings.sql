-- schema/04_embeddings: item vectors per embedding run and their k-means clusters (L-variants).
-- An embedding run is one LightGCN training on one train split; its id hashes the run config
-- and the split's fingerprint, so an unchanged split with the same config reuses it.
create table if not exists embedding_runs (
    embedding_run     varchar primary key,
    dataset           varchar not null,
    setting           varchar not null,
    model             varchar not null,
    config            json not null,
    train_fingerprint varchar not null,
    n_items           integer not null,
    dim               integer not null,
    metrics           json,
    created_at        timestamp not null
);

create table if not exists item_embeddings (
    embedding_run varchar not null,
    dataset       varchar not null,
    item_id       integer not null,
    vector        float[] not null,
    primary key (embedding_run, dataset, item_id)
);

-- One clustering per (embedding run, C): a new k-means seed or vectors transform replaces the stored one.
create table if not exists item_clusters (
    embedding_run varchar not null,
    dataset       varchar not null,
    n_clusters    integer not null,
    seed          bigint not null,
    vectors       varchar not null default 'raw',  -- what k-means clustered (diffrec_core.clustering.prepare_vectors)
    item_id       integer not null,
    cluster       integer not null,
    primary key (embedding_run, dataset, n_clusters, item_id)
);
-- Warehouses made before the vectors were recorded clustered raw ones.
alter table item_clusters add column if not exists vectors varchar default 'raw';
