-- embeddings/cluster_sizes: the cluster-size report of every clustering of an embedding run.
select n_clusters, seed, vectors, cluster, count(*) as items
from item_clusters
where embedding_run = $embedding_run and dataset = $dataset
group by n_clusters, seed, vectors, cluster
order by n_clusters, seed, cluster;
