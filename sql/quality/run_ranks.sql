-- quality/run_ranks: whether a model run exists, and the largest rank in its served list ($served)
-- or in the one publishing it would serve.
select
    (select count(*) from model_runs where run_id = $run_id) as runs,
    coalesce(
        (select max(rank) from recommendations where $served and run_id = $run_id),
        (select max(rank) from recommendations_candidate where not $served and run_id = $run_id),
        1
    ) as max_rank;
