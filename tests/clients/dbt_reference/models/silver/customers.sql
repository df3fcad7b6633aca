-- The newest version of each customer; a deleted one is gone.
select id, name, segment
from (
    select id, name, segment, _op,
        row_number() over (partition by id order by _lsn desc, _seq desc) as newest
    from {{ source('bronze', 'customers') }}
) as latest
where newest = 1 and _op <> 'd'
