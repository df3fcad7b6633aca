-- Daily revenue per customer segment.
select o.ordered_on as day, c.segment, sum(i.quantity * i.price) as revenue,
    count(*) as lines, max(o.updated_at) as updated_at
from {{ ref('orders') }} as o
join {{ ref('order_items') }} as i on i.order_id = o.id
join {{ ref('customers') }} as c on c.id = o.customer_id
group by o.ordered_on, c.segment
