-- One row per customer with their order history: lifetime value from the orders, not the CRM's figure.
with orders as (
    select
        customer_id,
        count(*) as orders,
        sum(case when is_paid then 1 else 0 end) as paid_orders,
        sum(case when is_paid then net_amount_usd else 0 end) as lifetime_value_usd,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at
    from {{ ref('stg_orders') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.customer_name,
    customers.city,
    customers.joined_on,
    customers.is_vip,
    coalesce(orders.orders, 0) as orders,
    coalesce(orders.paid_orders, 0) as paid_orders,
    coalesce(orders.lifetime_value_usd, 0) as lifetime_value_usd,
    orders.first_ordered_at,
    orders.last_ordered_at
from {{ ref('stg_customers') }} as customers
left join orders on orders.customer_id = customers.customer_id
