{{ config(materialized='incremental', incremental_strategy='merge', unique_key='order_id',
          on_schema_change='sync_all_columns') }}
-- Every bronze column: a column added there is added here too (sync_all_columns).
select *
from {{ source('bronze', 'orders') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
