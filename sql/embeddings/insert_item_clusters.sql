-- embeddings/insert_item_clusters: load the registered frame `_item_clusters_frame` (item_id, cluster).
insert into item_clusters (embedding_run, dataset, n_clusters, seed, vectors, item_id, cluster)
select $embedding_run, $dataset, $n_clusters, $seed, $vectors, cast(item_id as integer), cast(cluster as integer)
from _item_clusters_frame;
