select
    order_id,
    ordered_at,
    cast(ordered_at as date) as order_date,
    customer_id,
    amount as amount_usd,
    coalesce(discount, 0) as discount,
    cast(amount * (1 - coalesce(discount, 0)) as numeric(14, 2)) as net_amount_usd,
    paid as is_paid,
    region
from {{ source('raw', 'orders') }}
