"""One application from the marketing system's SOAP response to the API: validated once on the way in,
decoded once by each consumer that reads it, and never again on the way between.

The application model's validator is wrapped with a counter, so every validation of an application counts,
whoever asks for it (model_validate, a constructor, a TypeAdapter over the model).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from canonical_model.application import ConnectionApplication
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from tests.integration.marketing_pipeline import case_numbers, fast_client, marketing_pipeline
from tests.support.auth import TEST_AUTH, bearer
from yekuo.consumers import CONSUMERS

NAMES = ("workflow", "feasibility", "case_feed", "marketing_writeback", "event_feed")
# The consumers whose handlers read an application's data; the others keep events as they are.
READERS = {"workflow", "feasibility"}


class CountingValidator:
    """The model's validator, counting every validation it makes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.count = 0

    def validate_python(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.inner.validate_python(*args, **kwargs)

    def validate_json(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.inner.validate_json(*args, **kwargs)

    def validate_strings(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.inner.validate_strings(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingValidator]:
    counting = CountingValidator(ConnectionApplication.__pydantic_validator__)
    monkeypatch.setattr(ConnectionApplication, "__pydantic_validator__", counting)
    yield counting


def test_an_application_is_validated_once_on_the_way_in_and_decoded_once_per_consumer(
    sqlite_engine: Engine, validations: CountingValidator
) -> None:
    world = generate_world(seed=11, customers=1, applications=1)
    [row] = world.all_applications()
    with (
        SimulatorServer(world) as simulator,
        marketing_pipeline(sqlite_engine, fast_client(simulator.wsdl_url), consumers=NAMES) as pipeline,
    ):
        pipeline.poll_until_done()
        assert validations.count == 1, "the mapping validates the application once"

        while pipeline.relay.relay_batches():
            pass
        assert validations.count == 1, "the outbox and the relay do not validate it again"

        decoded, settled = {}, {}
        names = [spec.name for spec in CONSUMERS if spec.name in NAMES]
        for name, consumer in zip(names, pipeline.consumers, strict=True):
            before = validations.count
            settled[name] = consumer.consume_once(max_messages=500, timeout_s=0.02)
            decoded[name] = validations.count - before
        # The customer and the application; the case feed and the write-back wait for the hub's events.
        assert settled == {name: 0 if name in {"case_feed", "marketing_writeback"} else 2 for name in NAMES}
        assert decoded == {name: int(name in READERS) for name in NAMES}

        # The hub's own events the consumers published (stage change, feasibility result) carry no
        # application to decode.
        pipeline.deliver()
        assert validations.count == 1 + len(READERS)

    assert case_numbers(sqlite_engine) == [row["APP_NO"]]
    client = TestClient(
        create_app(sqlite_engine, auth=TEST_AUTH, consumers=CONSUMERS), headers=bearer("viewer")
    )
    detail = client.get(f"/v1/applications/{row['APP_NO']}").json()
    assert detail["application"]["requested_capacity_kva"] == float(row["APPLY_CAP"])
    assert validations.count == 1 + len(READERS), "the API serves the stored document as it is"
