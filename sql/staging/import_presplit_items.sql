-- staging/import_presplit_items: dense item ids 0..n-1 of a pre-split dataset; keys are the ids as text.
insert into items (dataset, item_id, item_key)
select $dataset, cast(range as integer), cast(range as varchar)
from range($n_items);
