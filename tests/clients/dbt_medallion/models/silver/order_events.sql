{{ config(materialized='incremental', incremental_strategy='append') }}
select event_id, order_id, status, happened_at
from {{ source('bronze', 'order_events') }}
{% if is_incremental() %}
where event_id > (select max(event_id) from {{ this }})
{% endif %}
