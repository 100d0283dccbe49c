-- quality/scopes: everything the warehouse holds that a quality suite can check, one row per
-- (suite, scope): raw datasets, split settings, embedding runs, clusterings, published runs.
select 'raw_interactions' as suite, dataset, null as setting, null as embedding_run, null as n_clusters, null as run_id
from (select distinct dataset from raw_interactions)
union all
select 'split_interactions', dataset, setting, null, null, null
from split_reports
union all
select 'item_embeddings', dataset, null, embedding_run, null, null
from (select distinct dataset, embedding_run from item_embeddings)
union all
select 'item_clusters', dataset, null, embedding_run, n_clusters, null
from (select distinct dataset, embedding_run, n_clusters from item_clusters)
union all
select 'recommendations', dataset, null, null, null, run_id
from published
order by suite, dataset, setting, embedding_run, n_clusters, run_id;
