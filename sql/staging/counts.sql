-- staging/counts: staged users, items and interactions of a dataset, and raw rows behind them.
select
    (select count(*) from users where dataset = $dataset)            as n_users,
    (select count(*) from items where dataset = $dataset)            as n_items,
    (select count(*) from interactions where dataset = $dataset)     as n_interactions,
    (select count(*) from raw_interactions where dataset = $dataset) as n_raw;
