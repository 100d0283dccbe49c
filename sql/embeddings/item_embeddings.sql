-- embeddings/item_embeddings: one embedding run's item vectors, by item id.
select item_id, vector
from item_embeddings
where embedding_run = $embedding_run and dataset = $dataset
order by item_id;
