-- outputs/consumer_views: views and macros for consumers, (re)created with the schema.
-- latest_recommendations (schema/05_outputs) is the published top-K; these build on it.

-- recommendations_for(dataset, user): one user's published list, best first.
create or replace macro recommendations_for(p_dataset, p_user_key) as table
select run_id, rank, item_key, score
from latest_recommendations
where dataset = p_dataset
  and user_key = p_user_key
order by rank;

-- model_metrics_history: every model run with its headline metrics, newest first.
create or replace view model_metrics_history as
select
    r.run_id,
    r.dataset,
    r.setting,
    r.model,
    r.status,
    r.data_fingerprint,
    r.started_at,
    r.finished_at,
    cast(r.metrics -> 'valid' ->> 'recall@20' as double) as valid_recall_20,
    cast(r.metrics -> 'valid' ->> 'ndcg@20' as double)   as valid_ndcg_20,
    cast(r.metrics -> 'test' ->> 'recall@20' as double)  as test_recall_20,
    cast(r.metrics -> 'test' ->> 'ndcg@20' as double)    as test_ndcg_20,
    cast(r.metrics -> 'test' ->> 'recall@10' as double)  as test_recall_10,
    cast(r.metrics -> 'test' ->> 'ndcg@10' as double)    as test_ndcg_10,
    p.run_id is not null                                 as is_published
from model_runs as r
left join published as p
    on p.dataset = r.dataset
   and p.run_id = r.run_id
order by r.started_at desc, r.run_id desc;

-- run_lineage: from each ingested batch to the model runs it trained ('train') or was
-- scored by ('recommend'), and whether those recommendations are the published ones. A batch taken
-- out since (diffrec remove-batch) stays, with batch_removed true and no source, sha256 or ingest time.
create or replace view run_lineage as
with rec_counts as (
    select run_id, dataset, count(*) as n_recommendations
    from recommendations
    group by run_id, dataset
)
select
    i.dataset,
    i.batch_id,
    b.batch_id is null               as batch_removed,
    b.source,
    b.sha256,
    b.finished_at                    as ingested_at,
    i.role,
    r.run_id,
    r.model,
    r.status,
    r.data_fingerprint,
    coalesce(c.n_recommendations, 0) as n_recommendations,
    p.published_at,
    p.run_id is not null             as is_published
from run_inputs as i
left join ingest_batches as b
    on b.batch_id = i.batch_id
inner join model_runs as r
    on r.run_id = i.run_id
left join rec_counts as c
    on c.run_id = r.run_id
   and c.dataset = r.dataset
left join published as p
    on p.dataset = r.dataset
   and p.run_id = r.run_id
order by i.batch_id, r.started_at, i.role;
