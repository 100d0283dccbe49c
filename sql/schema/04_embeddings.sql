-- schema/04_embeddings: item vectors per embedding run and their k-means clusters.
create table if not exists item_embeddings (
    embedding_run varchar not null,
    dataset       varchar not null,
    item_id       integer not null,
    vector        float[] not null,
    primary key (embedding_run, dataset, item_id)
);

create table if not exists item_clusters (
    embedding_run varchar not null,
    dataset       varchar not null,
    n_clusters    integer not null,
    item_id       integer not null,
    cluster       integer not null,
    primary key (embedding_run, dataset, n_clusters, item_id)
);
