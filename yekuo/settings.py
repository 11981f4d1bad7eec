"""Hub settings from the environment (prefix YEKUO_, nested with __), with embedded defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class MarketingSettings(BaseModel):
    """Where the marketing system's SOAP service is and how to talk to it."""

    wsdl_url: str = "http://127.0.0.1:8001/marketing?wsdl"
    timeout_s: float = 10.0
    page_size: int = 200
    poll_interval_s: float = 1.0


class DeliverySettings(BaseModel):
    """How consumers retry a failing message before parking it."""

    retry_delays_ms: list[int] = Field(
        default=[1_000, 5_000, 30_000], min_length=1, description="delay before each retry; then it is parked"
    )


class Settings(BaseSettings):
    """All hub settings; every field can be set as YEKUO_<NAME> (nested: YEKUO_MARKETING__PAGE_SIZE)."""

    model_config = SettingsConfigDict(env_prefix="YEKUO_", env_nested_delimiter="__", extra="ignore")

    bus_url: str = "memory://"
    db_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'yekuo.db'}"
    config_dir: Path = Field(default=PROJECT_ROOT, description="folder holding mappings/ and routes/")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    exchange: str = "yekuo.events"
    marketing: MarketingSettings = MarketingSettings()
    delivery: DeliverySettings = DeliverySettings()
