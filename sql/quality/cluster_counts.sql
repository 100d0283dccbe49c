-- quality/cluster_counts: the numbers of clusters an embedding run of a dataset has clusterings for.
select distinct n_clusters
from item_clusters
where embedding_run = $embedding_run
  and dataset = $dataset
order by n_clusters;
