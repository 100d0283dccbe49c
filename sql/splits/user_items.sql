-- splits/user_items: every staged (user, item) pair of a dataset, whatever its rating, ordered:
-- the items a user has interacted with, which random noise must avoid.
select user_id, item_id
from interactions
where dataset = $dataset
order by user_id, item_id;
