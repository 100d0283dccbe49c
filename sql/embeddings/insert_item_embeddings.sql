-- embeddings/insert_item_embeddings: load the registered frame `_item_embeddings_frame` (item_id, vector).
insert into item_embeddings (embedding_run, dataset, item_id, vector)
select $embedding_run, $dataset, cast(item_id as integer), cast(vector as float[])
from _item_embeddings_frame;
