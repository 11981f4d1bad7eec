"""Tests of running the marketing simulator with uvicorn: background thread and foreground command."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime

import httpx2
import pytest

from ground.errors import ConfigError
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer, change_one
from simulators.marketing.world import status_flow

START = datetime(2026, 11, 2, 8, 30)


def test_start_on_port_zero_serves_on_a_free_port_until_stopped() -> None:
    server = SimulatorServer(generate_world(seed=1, customers=5, applications=10, start=START))
    assert server.wsdl_url.endswith("/marketing?wsdl")
    server.start()
    try:
        port = int(server.base_url.rsplit(":", 1)[1])
        assert port > 0
        assert server.wsdl_url == f"http://127.0.0.1:{port}/marketing?wsdl"
        response = httpx2.get(server.wsdl_url)
        assert response.status_code == 200
        assert f'location="http://127.0.0.1:{port}/marketing"' in response.text
    finally:
        server.stop()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(server.wsdl_url)


def test_start_on_a_port_in_use_is_a_config_error() -> None:
    world = generate_world(seed=1, customers=5, applications=10, start=START)
    with SimulatorServer(world) as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            SimulatorServer(world, port=port)


def test_run_prints_the_wsdl_url_and_serves_the_seeded_world() -> None:
    code = "from simulators.marketing.server import run; run('127.0.0.1', 0, 4, 20, 50)"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        wsdl_line = process.stdout.readline()
        assert banner.startswith("marketing simulator: 20 customers, 50 applications (seed 4)")
        assert wsdl_line.startswith("WSDL: http://127.0.0.1:")
        wsdl_url = wsdl_line.removeprefix("WSDL: ").strip()
        response = httpx2.get(wsdl_url, timeout=10)
        assert response.status_code == 200
        assert wsdl_url.removesuffix("?wsdl") in response.text
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_run_with_faults_prints_them_and_serves_them() -> None:
    code = (
        "from simulators.marketing.server import run; "
        "run('127.0.0.1', 0, 4, 20, 50, faults=['http_500:op=GetCustomers'], change_interval_s=0.2)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        wsdl_url = process.stdout.readline().removeprefix("WSDL: ").strip()
        assert process.stdout.readline().strip() == "fault: http_500:op=GetCustomers"
        envelope = (
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:mkt="urn:yekuo:sim:marketing:v1"><soap:Body><mkt:GetCustomers><mkt:consNo>1</mkt:consNo>'
            "</mkt:GetCustomers></soap:Body></soap:Envelope>"
        )
        response = httpx2.post(wsdl_url.removesuffix("?wsdl"), content=envelope, timeout=10)
        assert (response.status_code, response.headers["content-type"].split(";")[0]) == (500, "text/html")
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_change_one_moves_an_open_application_and_stops_when_all_are_archived() -> None:
    world = generate_world(seed=5, customers=3, applications=2, start=START)
    rng = random.Random(1)
    moved = change_one(world, rng)
    assert moved in {row["APP_NO"] for row in world.all_applications()}
    for _ in range(20):
        change_one(world, rng)
    assert all(row["STATUS_CODE"] == status_flow(row)[-1] for row in world.all_applications())
    assert change_one(world, rng) is None
