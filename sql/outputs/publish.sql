-- outputs/publish: point `published` (and so view latest_recommendations) at a run.
insert into published (dataset, run_id, published_at)
values ($dataset, $run_id, cast(now() as timestamp))
on conflict (dataset) do update
set run_id = excluded.run_id,
    published_at = excluded.published_at;
