-- The newest version of each order.
select id, customer_id, ordered_on, status, _ts as updated_at
from (
    select id, customer_id, ordered_on, status, _ts, _op,
        row_number() over (partition by id order by _lsn desc, _seq desc) as newest
    from {{ source('bronze', 'orders') }}
) as latest
where newest = 1 and _op <> 'd'
