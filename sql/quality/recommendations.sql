-- quality/recommendations: one row per recommendation of a model run, plus one row (covered =
-- false, no item) per user with history but no recommendation, with the columns the
-- recommendations suite checks: the user's row count against min(K, unseen items), the score
-- one rank above, whether the item is in the user's history, and whether the score is finite.
-- History follows recommend_run: users with an interaction kept by the run's rating filter
-- get recommendations; every staged interaction of the user counts as seen. $served: the list the
-- run serves now; otherwise the one publishing it would serve (a pending refresh, if any).
with run as (
    select m.dataset, r.min_rating
    from model_runs as m
    left join split_reports as r
        on r.dataset = m.dataset
       and r.setting = m.setting
    where m.run_id = $run_id
),
n_items as (
    select count(*) as n from items where dataset = (select dataset from run)
),
seen as (
    select u.user_key, it.item_key, i.rating
    from interactions as i
    inner join users as u
        on u.dataset = i.dataset
       and u.user_id = i.user_id
    inner join items as it
        on it.dataset = i.dataset
       and it.item_id = i.item_id
    where i.dataset = (select dataset from run)
),
users_with_history as (
    select distinct user_key
    from seen
    where (select min_rating from run) is null
       or rating is null
       or rating >= (select min_rating from run)
),
seen_counts as (
    select user_key, count(*) as n_seen from seen group by user_key
),
recs as (
    select user_key, item_key, rank, score
    from recommendations
    where $served
      and run_id = $run_id
      and dataset = (select dataset from run)
    union all
    select user_key, item_key, rank, score
    from recommendations_candidate
    where not $served
      and run_id = $run_id
      and dataset = (select dataset from run)
),
scored as (
    select
        r.user_key,
        r.item_key,
        r.rank,
        r.score,
        isfinite(r.score)                                                   as score_is_finite,
        lag(r.score) over (partition by r.user_key order by r.rank)         as previous_rank_score,
        count(*) over (partition by r.user_key)                             as user_rows,
        s.item_key is not null                                              as item_in_history,
        true                                                                as covered
    from recs as r
    left join seen as s
        on s.user_key = r.user_key
       and s.item_key = r.item_key
),
uncovered as (
    select
        h.user_key,
        cast(null as varchar)   as item_key,
        cast(null as integer)   as rank,
        cast(null as double)    as score,
        cast(null as boolean)   as score_is_finite,
        cast(null as double)    as previous_rank_score,
        cast(0 as bigint)       as user_rows,
        cast(null as boolean)   as item_in_history,
        false                   as covered
    from users_with_history as h
    where h.user_key not in (select user_key from recs)
),
all_rows as (
    select * from scored
    union all
    select * from uncovered
)
select
    a.*,
    least(cast($k as bigint), (select n from n_items) - coalesce(c.n_seen, 0)) as expected_rows
from all_rows as a
left join seen_counts as c
    on c.user_key = a.user_key
order by a.user_key, a.rank;
