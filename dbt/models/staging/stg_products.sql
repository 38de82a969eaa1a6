select
    sku,
    product_name,
    price,
    stock,
    margin
from {{ source('raw', 'products') }}
