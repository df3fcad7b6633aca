{{ config(materialized='view') }}
select o.order_id, o.customer, count(e.event_id) as events
from {{ ref('orders') }} o
left join {{ ref('order_events') }} e on e.order_id = o.order_id
where o.status = 'placed'
group by o.order_id, o.customer
