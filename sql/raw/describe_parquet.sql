-- raw/describe_parquet: column name and DuckDB type of each column of a Parquet file.
select column_name, column_type
from (describe select * from read_parquet($path));
