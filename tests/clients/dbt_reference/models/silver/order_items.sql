-- The newest version of each order line, its price as a double; a line with a negative
-- amount is left out (the pipeline quarantines it).
select order_id, line, product, quantity, price
from (
    select order_id, line, product, quantity, cast(price as double) as price, _op,
        row_number() over (partition by order_id, line order by _lsn desc, _seq desc) as newest
    from {{ source('bronze', 'order_items') }}
) as latest
where newest = 1 and _op <> 'd' and quantity * price >= 0
