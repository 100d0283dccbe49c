-- staging/user_keys: a dataset's user keys in dense id order.
select user_id, user_key
from users
where dataset = $dataset
order by user_id;
