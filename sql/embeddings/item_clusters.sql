-- embeddings/item_clusters: one clustering's item -> cluster ids (with its k-means seed and vectors), by item id.
select item_id, cluster, seed, vectors
from item_clusters
where embedding_run = $embedding_run and dataset = $dataset and n_clusters = $n_clusters
order by item_id;
