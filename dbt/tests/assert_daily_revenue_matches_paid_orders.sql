-- The mart loses no paid revenue: its total equals the paid orders' total (returns a row when not).
select mart.total as mart_total, orders.total as orders_total
from (select coalesce(sum(revenue_usd), 0) as total from {{ ref('fct_daily_revenue') }}) as mart
cross join (
    select coalesce(sum(net_amount_usd), 0) as total from {{ ref('stg_orders') }} where is_paid
) as orders
where mart.total <> orders.total
