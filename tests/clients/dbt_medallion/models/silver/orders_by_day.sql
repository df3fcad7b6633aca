{{ config(materialized='incremental', incremental_strategy='delete+insert',
          unique_key='order_id') }}
select order_id, customer, amount, cast(updated_at as date) as order_day
from {{ source('bronze', 'orders') }}
{% if is_incremental() %}
where updated_at > (select max(cast(order_day as timestamp)) from {{ this }})
{% endif %}
