"""The hub API as the tests build it: create_app with the hub's own consumer table.

app = hub_app(engine, auth=TEST_AUTH)
"""

from __future__ import annotations

import functools

from api.app import create_app
from yekuo.consumers import CONSUMERS

hub_app = functools.partial(create_app, consumers=CONSUMERS)
