{{ config(materialized='table') }}
select customer, count(*) as orders, sum(amount) as revenue
from {{ ref('orders') }}
where status <> 'returned'
group by customer
