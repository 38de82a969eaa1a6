-- Paid revenue per order day, converted to won with the latest US-dollar rate on or before that day.
with paid as (
    select order_date, net_amount_usd
    from {{ ref('stg_orders') }}
    where is_paid
),

daily as (
    select order_date, count(*) as paid_orders, sum(net_amount_usd) as revenue_usd
    from paid
    group by order_date
),

usd as (
    select rate_date, krw_per_unit
    from {{ ref('stg_exchange_rates') }}
    where currency = 'USD'
),

rate_day as (
    select daily.order_date, max(usd.rate_date) as rate_date
    from daily
    inner join usd on usd.rate_date <= daily.order_date
    group by daily.order_date
)

select
    daily.order_date,
    daily.paid_orders,
    daily.revenue_usd,
    usd.krw_per_unit as usd_krw_rate,
    usd.rate_date as rate_as_of,
    cast(round(daily.revenue_usd * usd.krw_per_unit, 0) as numeric(18, 0)) as revenue_krw
from daily
left join rate_day on rate_day.order_date = daily.order_date
left join usd on usd.rate_date = rate_day.rate_date
