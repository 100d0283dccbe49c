-- staging/item_keys: a dataset's item keys in dense id order.
select item_id, item_key
from items
where dataset = $dataset
order by item_id;
