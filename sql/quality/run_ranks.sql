-- quality/run_ranks: whether a model run exists, and the largest rank among its recommendations.
select
    (select count(*) from model_runs where run_id = $run_id)                    as runs,
    (select coalesce(max(rank), 1) from recommendations_candidate where run_id = $run_id) as max_rank;
