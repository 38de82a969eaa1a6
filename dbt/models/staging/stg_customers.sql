select
    customer_id,
    {{ adapter.quote('고객명') }} as customer_name,
    {{ adapter.quote('도시') }} as city,
    {{ adapter.quote('가입일') }} as joined_on,
    vip as is_vip,
    lifetime_value as crm_lifetime_value_krw,
    updated_at
from {{ source('raw', 'customers') }}
