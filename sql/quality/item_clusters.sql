-- quality/item_clusters: one row per staged item of a dataset or clustered item of one
-- (embedding run, number of clusters), with the columns the item_clusters suite checks: whether
-- the item is staged, how many clusters hold it, whether its cluster id is in 0..n_clusters-1,
-- and how many of the n_clusters clusters hold no item (the same on every row).
with clustered as (
    select item_id, cluster
    from item_clusters
    where embedding_run = $embedding_run
      and dataset = $dataset
      and n_clusters = $n_clusters
),
staged as (
    select item_id from items where dataset = $dataset
),
per_item as (
    select item_id, count(*) as clusters_of_item, min(cluster) as cluster
    from clustered
    group by item_id
),
used as (
    select count(distinct cluster) as n_used
    from clustered
    where cluster between 0 and cast($n_clusters as integer) - 1
)
select
    coalesce(p.item_id, s.item_id)                                      as item_id,
    s.item_id is not null                                               as item_staged,
    coalesce(p.clusters_of_item, 0)                                     as clusters_of_item,
    p.cluster,
    p.cluster between 0 and cast($n_clusters as integer) - 1            as cluster_in_range,
    cast($n_clusters as integer) - (select n_used from used)            as empty_clusters
from per_item as p
full outer join staged as s
    on s.item_id = p.item_id
order by item_id;
