"""Regenerate the demo's sample workbook and CSV (deterministic): ``python examples/make_sample_workbook.py``."""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).parent
NAMES = [
    "김민준",
    "이서연",
    "박지호",
    "최수아",
    "정도윤",
    "강하은",
    "조시우",
    "윤지유",
    "장은우",
    "임서준",
    "Alice Kim",
    "Bob O'Neil",
    'Carol "CJ" Jones',
]
CITIES = ["서울", "부산", "인천", "대구", "Seattle", "Austin"]
REGIONS = ["APAC", "NA", "EMEA"]


def main() -> None:
    rng = random.Random(6)
    book = Workbook()
    orders = book.active
    orders.title = "Orders"
    orders.append(["Order ID", "Ordered At", "Customer ID", "Amount", "Discount", "Paid", "Region", "Note"])
    start = datetime(2026, 1, 1, 8, 0)
    for order_id in range(1, 241):
        amount = rng.randint(500, 250_000) / 100
        orders.append(
            [
                order_id,
                start + timedelta(hours=7 * order_id, minutes=rng.randint(0, 59)),
                rng.randint(1, 40),
                f"${amount:,.2f}",  # as a formatted currency cell reads through the Sheets API
                f"{rng.choice([0, 5, 10, 12.5, 15])}%",
                rng.random() > 0.2,
                rng.choice(REGIONS),
                rng.choice([None, None, "gift wrap", "배송 메모: 문 앞에 놓아주세요", 'says "fragile",\nsecond line']),
            ]
        )
    for cell in orders["B"][1:]:
        cell.number_format = "yyyy-mm-dd hh:mm"
    customers = book.create_sheet("Customers")
    customers.append(["Customer ID", "고객명", "도시", "가입일", "VIP", "Lifetime Value", "Updated At"])
    for customer_id in range(1, 41):
        name, city = rng.choice(NAMES), rng.choice(CITIES)
        joined = date(2024, 1, 1) + timedelta(days=rng.randint(0, 700))
        customers.append(
            [
                customer_id,
                name,
                city,
                joined,
                rng.random() > 0.8,
                f"₩{rng.randint(10_000, 9_000_000):,}",
                datetime(joined.year, joined.month, joined.day, 9) + timedelta(minutes=13 * customer_id),
            ]
        )
    for cell in customers["D"][1:]:
        cell.number_format = "yyyy-mm-dd"
    # A CRM correction feed for the demo's second day: customer 7 moved to Seoul and became a VIP.
    moved = [customers.cell(8, col).value for col in range(1, 8)]
    with (HERE / "customer_updates.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([customers.cell(1, col).value for col in range(1, 8)])
        writer.writerow([moved[0], moved[1], "서울", moved[3].isoformat(), True, moved[5], "2026-01-06 11:00:00"])
    for cell in customers["G"][1:]:
        cell.number_format = "yyyy-mm-dd hh:mm"
    products = book.create_sheet("Products")
    products.append(["SKU", "Product Name", "Price", "Stock", "Margin"])
    for n in range(1, 31):
        products.append(
            [
                f"{n * 37:05d}",
                f"Product {n} / 상품 {n}",
                round(rng.uniform(1, 500), 2),
                rng.randint(0, 5000),
                round(rng.uniform(0.05, 0.6), 3),
            ]
        )
    for cell in products["E"][1:]:
        cell.number_format = "0.0%"
    book.save(HERE / "sample_workbook.xlsx")

    with (HERE / "exchange_rates.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Rate Date", "Currency", "KRW per unit"])
        for day in range(75):  # covers every order date
            for currency, base in (("USD", 1380.0), ("EUR", 1500.0), ("JPY", 9.2)):
                writer.writerow(
                    [
                        (date(2026, 1, 1) + timedelta(days=day)).isoformat(),
                        currency,
                        f"{base * rng.uniform(0.97, 1.03):,.2f}",
                    ]
                )


if __name__ == "__main__":
    main()
