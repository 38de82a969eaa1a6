-- raw.exchange_rates gets the whole feed appended once per logical date: keep each day's latest batch.
with ranked as (
    select
        cast(rate_date as date) as rate_date,
        currency,
        krw_per_unit,
        row_number() over (partition by rate_date, currency order by _hw_batch desc) as batch_rank
    from {{ source('raw', 'exchange_rates') }}
)

select rate_date, currency, krw_per_unit
from ranked
where batch_rank = 1
