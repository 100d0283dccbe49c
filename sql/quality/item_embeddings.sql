-- quality/item_embeddings: one row per staged item of a dataset or embedded item of one
-- embedding run, with the columns the item_embeddings suite checks: whether the item is
-- staged, whether it has a vector, the vector's length and its NaN/infinite values.
with embedded as (
    select item_id, vector
    from item_embeddings
    where embedding_run = $embedding_run
      and dataset = $dataset
),
staged as (
    select item_id from items where dataset = $dataset
)
select
    coalesce(e.item_id, s.item_id)                                     as item_id,
    s.item_id is not null                                              as item_staged,
    e.item_id is not null                                              as has_embedding,
    len(e.vector)                                                      as dimension,
    len(list_filter(e.vector, lambda x: not isfinite(x)))              as non_finite_values
from embedded as e
full outer join staged as s
    on s.item_id = e.item_id
order by item_id;
