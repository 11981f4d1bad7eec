"""Adapter for the marketing system (营销系统): a zeep client of its SOAP service and a polling source."""

from adapters.marketing.client import ApplicationPage, MarketingClient, Watermark
from adapters.marketing.source import MarketingSource

__all__ = ["ApplicationPage", "MarketingClient", "MarketingSource", "Watermark"]
