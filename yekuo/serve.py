"""`yekuo run`: the hub and its API against the legacy systems named in the settings."""

from __future__ import annotations

import contextlib
import time

from adapters.marketing.source import MarketingSource
from api.app import create_app
from yekuo.hub import Hub
from yekuo.settings import Settings
from yekuo.webserver import BackgroundServer


def serve_hub(settings: Settings) -> int:
    """Run until interrupted."""
    source = MarketingSource(
        settings.marketing.wsdl_url,
        page_size=settings.marketing.page_size,
        timeout_s=settings.marketing.timeout_s,
    )
    hub = Hub(settings, sources=[source])
    hub.start()
    api = BackgroundServer(
        create_app(hub.engine, readiness=hub.readiness), host=settings.api_host, port=settings.api_port
    ).start()
    print(f"hub API on {api.base_url}; polling {settings.marketing.wsdl_url}", flush=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        hub.stop()
        api.stop()
    return 0
