-- splits/rating_counts: a dataset's staged interactions and how many of them carry a rating
-- (none: implicit feedback).
select
    count(*)      as n_interactions,
    count(rating) as n_rated
from interactions
where dataset = $dataset;
