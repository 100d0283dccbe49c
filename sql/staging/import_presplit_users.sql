-- staging/import_presplit_users: dense user ids 0..n-1 of a pre-split dataset; keys are the ids as text.
insert into users (dataset, user_id, user_key)
select $dataset, cast(range as integer), cast(range as varchar)
from range($n_users);
