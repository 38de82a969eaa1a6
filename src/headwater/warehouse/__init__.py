"""Warehouse loaders, one module per dialect, sharing the load plans in ``base``."""

from headwater.warehouse.base import LoadResult, Warehouse

__all__ = ["LoadResult", "Warehouse"]
