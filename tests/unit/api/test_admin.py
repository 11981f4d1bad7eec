"""The admin API lists, shows, replays and discards dead letters and invalid input, recording the caller."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Bus
from ground.errors import BusUnavailableError
from pipeline.operations import Operations
from store.audit import AuditEntry, list_entries
from store.operations import list_actions
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer

from ..pipeline.parked_samples import (
    AUDIT_QUEUE,
    IDENTITY_NO,
    NOT_PERSONAL,
    PERSONAL_VALUES,
    WORKFLOW_QUEUE,
    dead_letter_payload,
    declare_consumers,
    park_dead_letter,
    park_invalid_envelope,
    park_invalid_record,
    personal_customer_record,
    personal_dead_letter_payload,
    shipped_ingestor,
)

OPERATOR = bearer("operator", sub="alice")
PII_OPERATOR = bearer("operator", scopes=["pii:read"], sub="pat")


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("admin")
    declare_consumers(url)
    yield url
    discard_broker(url)


@pytest.fixture
def client(sqlite_engine: Engine, bus_url: str) -> TestClient:
    operations = Operations(
        sqlite_engine, open_bus=lambda: open_bus(bus_url), ingestor=shipped_ingestor(sqlite_engine)
    )
    return TestClient(hub_app(sqlite_engine, auth=TEST_AUTH, operations=operations), headers=OPERATOR)


def test_dead_letters_and_invalid_input_are_listed_apart(client: TestClient, sqlite_engine: Engine) -> None:
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload(WORKFLOW_QUEUE))
    invalid_id = park_invalid_record(sqlite_engine)

    dead = client.get("/admin/dead-letters").json()
    invalid = client.get("/admin/invalid").json()

    assert [item["id"] for item in dead["items"]] == [dead_id] and dead["next_cursor"] is None
    assert dead["items"][0]["origin"] == WORKFLOW_QUEUE
    assert dead["items"][0]["reason"] == "database is locked (try 3)"
    assert [item["id"] for item in invalid["items"]] == [invalid_id]
    assert invalid["items"][0]["origin"] == "marketing/application A2"
    assert invalid["items"][0]["reason_code"] == "mapping" and "AC99999" in invalid["items"][0]["reason"]
    assert "payload" not in dead["items"][0]


def test_show_returns_the_payload_and_the_actions_taken(client: TestClient, sqlite_engine: Engine) -> None:
    payload = dead_letter_payload(WORKFLOW_QUEUE)
    dead_id = park_dead_letter(sqlite_engine, payload)
    assert client.get(f"/admin/dead-letters/{dead_id}").json()["actions"] == []

    client.post(f"/admin/dead-letters/{dead_id}/replay", headers=OPERATOR)
    shown = client.get(f"/admin/dead-letters/{dead_id}").json()

    assert shown["payload"] == payload and shown["status"] == "replayed"
    [action] = shown["actions"]
    assert (action["operator"], action["action"]) == ("alice", "replay")
    assert client.get(f"/admin/invalid/{dead_id}").status_code == 404
    missing = client.get("/admin/dead-letters/4711")
    assert missing.status_code == 404 and missing.json()["code"] == "parked-message-not-found"


def test_replaying_a_dead_letter_republishes_it_to_its_consumer_and_a_second_action_conflicts(
    client: TestClient, sqlite_engine: Engine, bus_url: str
) -> None:
    payload = dead_letter_payload(AUDIT_QUEUE)
    dead_id = park_dead_letter(sqlite_engine, payload)

    replayed = client.post(f"/admin/dead-letters/{dead_id}/replay", headers=OPERATOR)

    assert replayed.status_code == 200
    body = replayed.json()
    assert body["action"] == "replay" and body["operator"] == "alice"
    assert body["message"]["status"] == "replayed"
    bus = open_bus(bus_url)
    [delivery] = bus.fetch(AUDIT_QUEUE, 10, 0.1)
    assert delivery.message.message_id == payload["message_id"]
    assert delivery.message.headers["x-yekuo-replayed-by"] == "alice"
    assert bus.queue_depth(WORKFLOW_QUEUE) == 0
    bus.close()

    bob = bearer("operator", sub="bob")
    again = client.post(f"/admin/dead-letters/{dead_id}/replay", headers=bob)
    discard = client.post(f"/admin/dead-letters/{dead_id}/discard", headers=bob)
    assert (again.status_code, discard.status_code) == (409, 409)
    assert "already replayed" in again.json()["detail"] and again.json()["code"] == "not-parked"
    with sqlite_engine.connect() as conn:
        assert [(a.operator, a.action) for a in list_actions(conn)] == [("alice", "replay")]


def test_an_action_needs_an_authenticated_operator(client: TestClient, sqlite_engine: Engine) -> None:
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload())
    for headers, status in (({"Authorization": ""}, 401), (bearer("viewer"), 403)):
        for action in ("replay", "discard"):
            answer = client.post(f"/admin/dead-letters/{dead_id}/{action}", headers=headers)
            assert answer.status_code == status
    assert client.get(f"/admin/dead-letters/{dead_id}").json()["status"] == "parked"
    with sqlite_engine.connect() as conn:
        assert list_actions(conn) == []


def test_the_operator_recorded_is_the_token_subject_not_a_header(
    client: TestClient, sqlite_engine: Engine
) -> None:
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload())
    headers = {**bearer("operator", sub="carol"), "X-Operator": "mallory"}
    assert (
        client.post(f"/admin/dead-letters/{dead_id}/discard", headers=headers).json()["operator"] == "carol"
    )
    with sqlite_engine.connect() as conn:
        assert [(a.operator, a.action) for a in list_actions(conn)] == [("carol", "discard")]


def test_replaying_an_unchanged_invalid_record_parks_it_again(
    client: TestClient, sqlite_engine: Engine
) -> None:
    invalid_id = park_invalid_record(sqlite_engine)

    body = client.post(f"/admin/invalid/{invalid_id}/replay", headers=OPERATOR).json()

    assert body["message"]["status"] == "replayed" and body["reparked_id"] is not None
    again = client.get(f"/admin/invalid/{body['reparked_id']}").json()
    assert again["status"] == "parked" and again["reason"] == body["message"]["reason"]
    listed = client.get("/admin/invalid", params={"status": "all"}).json()
    assert [(item["id"], item["status"]) for item in listed["items"]] == [
        (invalid_id, "replayed"),
        (body["reparked_id"], "parked"),
    ]


def test_an_invalid_envelope_cannot_be_replayed_and_is_discarded(
    client: TestClient, sqlite_engine: Engine
) -> None:
    envelope_id = park_invalid_envelope(sqlite_engine)
    refused = client.post(f"/admin/invalid/{envelope_id}/replay", headers=OPERATOR)
    assert refused.status_code == 422 and "discard" in refused.json()["detail"]
    assert refused.json()["code"] == "not-replayable"

    discarded = client.post(f"/admin/invalid/{envelope_id}/discard", headers=OPERATOR)

    assert discarded.status_code == 200 and discarded.json()["message"]["status"] == "discarded"
    assert client.get("/admin/invalid").json()["items"] == []
    assert len(client.get("/admin/invalid", params={"status": "discarded"}).json()["items"]) == 1


def test_a_bus_failure_during_replay_is_a_503_and_changes_nothing(sqlite_engine: Engine) -> None:
    def broker_down() -> Bus:
        raise BusUnavailableError("connection refused")

    app = hub_app(sqlite_engine, auth=TEST_AUTH, operations=Operations(sqlite_engine, open_bus=broker_down))
    client = TestClient(app, headers=OPERATOR)
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload())

    answer = client.post(f"/admin/dead-letters/{dead_id}/replay", headers=OPERATOR)

    assert answer.status_code == 503 and "connection refused" in answer.json()["detail"]
    assert answer.json()["code"] == "bus-unavailable"
    assert client.get(f"/admin/dead-letters/{dead_id}").json()["status"] == "parked"


def test_listing_pages_with_a_cursor_and_checks_its_parameters(
    client: TestClient, sqlite_engine: Engine
) -> None:
    ids = [park_dead_letter(sqlite_engine, dead_letter_payload(application_no=f"A{n}")) for n in range(3)]
    first = client.get("/admin/dead-letters", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == ids[:2] and first["next_cursor"]
    rest = client.get("/admin/dead-letters", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["id"] for item in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    # A cursor of one listing is not accepted by another.
    foreign = client.get("/admin/invalid", params={"cursor": first["next_cursor"]})
    assert foreign.status_code == 400 and foreign.json()["code"] == "invalid-cursor"
    assert client.get("/admin/dead-letters", params={"status": "lost"}).status_code == 422
    assert client.get("/admin/dead-letters", params={"limit": 0}).status_code == 422


def test_the_admin_routes_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for collection in ("dead-letters", "invalid"):
        assert {
            f"/admin/{collection}",
            f"/admin/{collection}/{{parked_id}}",
            f"/admin/{collection}/{{parked_id}}/replay",
            f"/admin/{collection}/{{parked_id}}/discard",
        } <= set(paths)


def _pii_reads(engine: Engine) -> list[AuditEntry]:
    with engine.connect() as conn:
        return list_entries(conn, action="pii.read")


def _personal_shown(text: str) -> list[str]:
    return [value for value in PERSONAL_VALUES if value in text]


def test_without_pii_read_invalid_input_is_listed_and_shown_masked_and_its_other_data_in_clear(
    client: TestClient, sqlite_engine: Engine
) -> None:
    personal_id = park_invalid_record(sqlite_engine, personal_customer_record())
    plain_id = park_invalid_record(sqlite_engine)

    listing = client.get("/admin/invalid")
    shown = client.get(f"/admin/invalid/{personal_id}")

    assert (listing.status_code, shown.status_code) == (200, 200)
    assert _personal_shown(listing.text) == [] and _personal_shown(shown.text) == []
    items = {item["id"]: item for item in listing.json()["items"]}
    assert "**************1234" in items[personal_id]["reason"]
    assert "identity_document.number" in items[personal_id]["reason"]
    assert "AC99999" in items[plain_id]["reason"]  # nothing personal: shown as parked
    detail = shown.json()
    assert all(value in shown.text for value in NOT_PERSONAL)
    assert detail["payload"]["CERT_NO"] == "**************1234"
    assert detail["payload"]["CONTACTS"][0]["CONTACT_NAME"] == "李明"
    assert detail["origin"] == "marketing/customer 4130012345"
    assert detail["masked"] == ["payload.BANK_ACCT", "payload.CERT_NO", "payload.CONTACTS[].MOBILE", "reason"]
    assert _pii_reads(sqlite_engine) == []


def test_with_pii_read_invalid_input_is_shown_unmasked_and_each_such_read_is_audited(
    client: TestClient, sqlite_engine: Engine
) -> None:
    personal_id = park_invalid_record(sqlite_engine, personal_customer_record())
    plain_id = park_invalid_record(sqlite_engine)

    listing = client.get("/admin/invalid", headers=PII_OPERATOR)
    shown = client.get(f"/admin/invalid/{personal_id}", headers=PII_OPERATOR)

    assert IDENTITY_NO in listing.text
    assert _personal_shown(shown.text) == list(PERSONAL_VALUES) and shown.json()["masked"] == []
    assert all(value in shown.text for value in NOT_PERSONAL)
    reads = _pii_reads(sqlite_engine)
    assert [(entry.actor, entry.subject, entry.detail["view"]) for entry in reads] == [
        ("pat", f"parked/{personal_id}", "GET /admin/invalid"),
        ("pat", f"parked/{personal_id}", "GET /admin/invalid/{parked_id}"),
    ]
    assert reads[0].detail["fields"] == ["reason"]
    assert "payload.CERT_NO" in reads[1].detail["fields"]
    # The record without personal data was read too, but nothing was unmasked for it.
    assert all(entry.subject != f"parked/{plain_id}" for entry in reads)
    assert not _personal_shown(json.dumps([entry.detail for entry in reads]))


def test_dead_letters_are_masked_without_pii_read_and_unmasked_and_audited_with_it(
    client: TestClient, sqlite_engine: Engine
) -> None:
    payload = personal_dead_letter_payload()
    dead_id = park_dead_letter(sqlite_engine, payload)

    masked_list = client.get("/admin/dead-letters")
    masked = client.get(f"/admin/dead-letters/{dead_id}")

    assert _personal_shown(masked_list.text) == [] and _personal_shown(masked.text) == []
    assert (
        masked_list.json()["items"][0]["reason"] == "duplicate key (contact_phone)=(*******0001) in contacts"
    )
    body = json.loads(masked.json()["payload"]["body"])
    assert body["data"]["name"] == "南阳市宛城区李记餐馆" and body["id"] == payload["message_id"]
    assert body["data"]["identity_document"]["number"] == "**************1234"
    assert masked.json()["payload"]["headers"] == payload["headers"]
    assert _pii_reads(sqlite_engine) == []

    unmasked_list = client.get("/admin/dead-letters", headers=PII_OPERATOR)
    unmasked = client.get(f"/admin/dead-letters/{dead_id}", headers=PII_OPERATOR)

    assert unmasked.json()["payload"] == payload
    assert unmasked_list.json()["items"][0]["reason"] == payload["failures"][-1]["error"]
    assert [(entry.subject, entry.detail["view"]) for entry in _pii_reads(sqlite_engine)] == [
        (f"parked/{dead_id}", "GET /admin/dead-letters"),
        (f"parked/{dead_id}", "GET /admin/dead-letters/{parked_id}"),
    ]


def test_action_answers_and_the_recorded_action_details_do_not_show_personal_data_unmasked(
    client: TestClient, sqlite_engine: Engine
) -> None:
    personal_id = park_invalid_record(sqlite_engine, personal_customer_record())

    replayed = client.post(f"/admin/invalid/{personal_id}/replay", headers=PII_OPERATOR)

    # Parked again with the same reason, which quotes the identity number: the answer is masked for anyone.
    assert replayed.status_code == 200 and replayed.json()["reparked_id"] is not None
    assert _personal_shown(replayed.text) == [] and "**************1234" in replayed.json()["detail"]
    shown = client.get(f"/admin/invalid/{personal_id}").json()
    assert [action["operator"] for action in shown["actions"]] == ["pat"]
    assert _personal_shown(json.dumps(shown, ensure_ascii=False)) == [] and "actions" in shown["masked"]
    assert _pii_reads(sqlite_engine) == []
    unmasked = client.get(f"/admin/invalid/{personal_id}", headers=PII_OPERATOR).json()
    assert IDENTITY_NO in unmasked["actions"][0]["detail"]
    [read] = _pii_reads(sqlite_engine)
    assert "actions" in read.detail["fields"]
