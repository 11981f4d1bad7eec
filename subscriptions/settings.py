"""Settings of the event feed and the webhook dispatcher (YEKUO_SUBSCRIPTIONS__<NAME>)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SubscriptionSettings(BaseModel):
    """How long the feed keeps events, and how webhooks are delivered and retried."""

    feed_retention_days: float = Field(default=7.0, gt=0, description="events older than this are pruned")
    feed_max_rows: int = Field(default=1_000_000, ge=1, description="the feed keeps at most this many events")
    prune_interval_s: float = Field(default=300.0, gt=0, description="how often the feed is pruned")
    stream_poll_interval_s: float = Field(
        default=1.0, gt=0, description="how often an SSE stream looks for news"
    )
    stream_heartbeat_s: float = Field(default=15.0, gt=0, description="a comment line after this long idle")
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="a receiver must answer within this")
    webhook_max_attempts: int = Field(
        default=8, ge=1, description="tries of one delivery before it is parked"
    )
    webhook_initial_backoff_s: float = Field(default=10.0, ge=0, description="wait after the first failure")
    webhook_max_backoff_s: float = Field(default=3600.0, ge=0, description="longest wait between tries")
    webhook_batch: int = Field(default=100, ge=1, description="deliveries per subscription and step")
    webhook_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="how long a hub process owns a subscription's deliveries without renewing",
    )


class _Environment(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YEKUO_", env_nested_delimiter="__", extra="ignore")

    subscriptions: SubscriptionSettings = SubscriptionSettings()


def subscription_settings() -> SubscriptionSettings:
    """The settings from YEKUO_SUBSCRIPTIONS__* in the environment, defaults otherwise."""
    return _Environment().subscriptions
