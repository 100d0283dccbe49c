-- splits/n_items: the number of staged items of a dataset (dense ids 0 .. n - 1).
select count(*) as n_items
from items
where dataset = $dataset;
