"""The simulator speaks the documented wire protocol: checked with a bare websocket client.

These tests send the doc's JSON by hand, so they catch a simulator that only works with our
own client (the two could share a misunderstanding otherwise).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from concertpos_support import CONCERTPOS_API_KEY
from websockets.asyncio.client import ClientConnection, connect

from bot.simulation import Simulator
from bot_plugins.concertpos.simulator import ConcertPOSSimulator, simulator_from_args


async def ask(ws: ClientConnection, command: str, **parameters: Any) -> dict[str, Any]:
    params = {"api_key": CONCERTPOS_API_KEY, **parameters}
    await ws.send(json.dumps({"command": command, "parameters": params}))
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


def error_of(reply: dict[str, Any]) -> tuple[str, Any]:
    assert reply["type"] == "error", reply
    return reply["result"]["error"], reply["result"]["code"]


async def test_doc_examples_get_doc_shaped_replies() -> None:
    # a roomy budget: this test asks for 130 points' worth in a row
    roomy = ConcertPOSSimulator(instance="fest", api_key=CONCERTPOS_API_KEY, rate_limit=1000)
    async with roomy, connect(roomy.url) as ws:
        assert await ask(ws, "version") == {
            "type": "event",
            "result": {"event": "version", "parameters": {"Version": "1.0.1"}},
        }
        assert await ask(ws, "getstatus") == {
            "type": "event",
            "result": {
                "event": "getstatus",
                "parameters": {"status": "success", "message": "All systems are operational"},
            },
        }
        products = (await ask(ws, "listproducts", POSID=1))["result"]["parameters"]["Products"]
        assert set(products[0]) == {
            "ID",
            "ProductName",
            "Price",
            "Deposit",
            "CrewBlocked",
            "Amount",
        }
        methods = (await ask(ws, "listpm", POSID=1))["result"]["parameters"]["PaymentMethods"]
        assert set(methods[0]) == {"ID", "Payment", "color"}
        license_ = (await ask(ws, "getlicense"))["result"]["parameters"]["License"]
        assert license_["Active"] == "1"
        deposit = (await ask(ws, "getdeposit"))["result"]["parameters"]["Deposit"]
        assert deposit["Price"] == 2
        config = (await ask(ws, "getconfig"))["result"]["parameters"]["Config"]
        assert config["currency"] == "EUR"


async def test_payitems_answers_payitem_and_books_transactions_with_hashes(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    async with connect(concertpos_sim.url) as ws:
        reply = await ask(
            ws,
            "payitems",
            POSID=1,
            PaymentMethod=1,
            Products=[{"ID": 1, "Amount": 2}, {"ID": 2, "Amount": 0}, {"ID": 5, "Amount": 1}],
        )
        assert reply["result"] == {"event": "payitem", "parameters": {"Items": 3}}
        listed = await ask(ws, "listtransactions", POSID=1, Limit=2)
    params = listed["result"]["parameters"]
    assert params["Count"] == 2
    newest, previous = params["Transactions"]
    assert set(newest) == {
        "ID",
        "Payment_ID",
        "PointOfSaleID",
        "Product_ID",
        "AmountProduct",
        "AmountMoney",
        "timestamp",
        "hash",
        "Note",
    }
    assert (newest["Product_ID"], newest["AmountProduct"], newest["AmountMoney"]) == (5, 1, 3.5)
    assert (previous["Product_ID"], previous["AmountMoney"]) == (1, 13)  # 2 x (4.50 + 2.00)
    assert newest["ID"] == previous["ID"] + 1
    assert len(newest["hash"]) == 128 and newest["timestamp"].endswith("Z")


async def test_errors_use_the_error_model(concertpos_sim: ConcertPOSSimulator) -> None:
    async with connect(concertpos_sim.url) as ws:
        await ws.send("{not json")
        assert error_of(json.loads(await ws.recv())) == ("invalid_json", 0)
        await ws.send(json.dumps({"command": "version", "parameters": {}}))
        assert error_of(json.loads(await ws.recv())) == ("missing_parameter_api", 0)
        await ws.send(json.dumps({"command": "version", "parameters": {"api_key": "nope"}}))
        assert error_of(json.loads(await ws.recv())) == ("api_key_mismatch", 0)
        assert error_of(await ask(ws, "refund")) == ("unknown_command", 0)
        assert error_of(await ask(ws, "listpm")) == ("missing_parameter_POSID", 0)
        assert error_of(await ask(ws, "listpm", POSID=42)) == ("invalid_parameter", 0)
        bad_amount = await ask(
            ws, "payitems", POSID=1, PaymentMethod=1, Products=[{"ID": 1, "Amount": -1}]
        )
        assert error_of(bad_amount) == ("invalid_parameter", 0)
        assert error_of(await ask(ws, "payitems", POSID=1, PaymentMethod=1)) == (
            "missing_parameter_Products",
            0,
        )
        assert error_of(await ask(ws, "registerdevice", UUID="x")) == ("invalid_parameter", 0)
    assert concertpos_sim.errors_sent["api_key_mismatch"] == 1
    assert concertpos_sim.command_counts["refund"] == 1


async def test_instance_comes_from_the_path_or_the_query(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    async with connect(concertpos_sim.query_url("cyton")) as ws:
        assert (await ask(ws, "version"))["type"] == "event"
    wrong = concertpos_sim.url.rsplit("/", 1)[0] + "/other"
    async with connect(wrong) as ws:
        assert error_of(await ask(ws, "version")) == ("invalid_instance", 0)
    async with ConcertPOSSimulator(api_key=None) as keyless, connect(keyless.url) as ws:
        assert error_of(await ask(ws, "version")) == ("no_api_key", 0)


async def test_rate_limit_is_strict_and_answers_with_retry_after() -> None:
    window = 1.2  # its own, longer window: the checks below need slack on a busy machine
    sim = ConcertPOSSimulator(instance="fest", api_key=CONCERTPOS_API_KEY, rate_window=window)
    async with sim, connect(sim.url) as ws:
        await ask(ws, "version")  # 50
        await asyncio.sleep(window / 2)
        second = time.monotonic()
        await ask(ws, "version")  # 100: the whole budget
        error, code = error_of(await ask(ws, "listtransactions", POSID=1))  # even 2 is too many
        assert error == "ratelimit"
        assert code["command"] == "listtransactions"
        assert 0 < code["retry_after"] <= window / 2 * 1000  # when the first 50 leave
        assert sim.ratelimit_errors == 1
        # the refused request cost nothing; after retry_after the oldest spend has left
        await asyncio.sleep(code["retry_after"] / 1000 + 0.02)
        assert (await ask(ws, "version"))["type"] == "event"
        assert error_of(await ask(ws, "version"))[0] == "ratelimit"  # second 50 still inside
        await asyncio.sleep(max(0.0, second + window - time.monotonic()) + 0.02)
        assert (await ask(ws, "version"))["type"] == "event"
    assert sim.ratelimit_errors == 2


async def test_rate_limit_is_shared_by_connections_and_shards(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    async with (
        connect(concertpos_sim.urls["exon"]) as first,
        connect(concertpos_sim.urls["cyton"]) as second,
    ):
        await ask(first, "version")
        await ask(second, "version")
        assert error_of(await ask(first, "getlicense"))[0] == "ratelimit"


async def test_broadcasts_reach_every_shard_and_hooks_change_prices(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    async with (
        connect(concertpos_sim.urls["exon"]) as first,
        connect(concertpos_sim.urls["cyton"]) as second,
    ):
        assert concertpos_sim.connection_count == 2
        concertpos_sim.set_price(1, "4.90")
        assert await concertpos_sim.broadcast_updatepos() == 2
        expected = {"type": "broadcast", "result": {"message": "updatepos", "parameters": {}}}
        for ws in (first, second):
            assert json.loads(await asyncio.wait_for(ws.recv(), 2)) == expected
        products = (await ask(first, "listproducts", POSID=1))["result"]["parameters"]
        assert products["Products"][0]["Price"] == 4.9


async def test_muted_and_delayed_commands(concertpos_sim: ConcertPOSSimulator) -> None:
    concertpos_sim.muted.add("getstatus")
    concertpos_sim.delays["version"] = 0.2
    async with connect(concertpos_sim.url) as ws:
        await ws.send(
            json.dumps({"command": "getstatus", "parameters": {"api_key": CONCERTPOS_API_KEY}})
        )
        started = time.monotonic()
        reply = await ask(ws, "version")  # the muted command got no reply at all
        assert reply["result"]["event"] == "version" and time.monotonic() - started >= 0.2


async def test_a_stopped_shard_refuses_connections_until_restarted(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    url = concertpos_sim.urls["exon"]
    await concertpos_sim.stop_shard("exon")
    with pytest.raises(OSError):
        async with connect(url, open_timeout=1):
            pass
    async with connect(concertpos_sim.urls["cyton"]) as ws:
        assert (await ask(ws, "getstatus"))["type"] == "event"
    await concertpos_sim.start_shard("exon")
    assert concertpos_sim.urls["exon"] == url
    async with connect(url) as ws:
        assert (await ask(ws, "getstatus"))["type"] == "event"


async def test_drop_connections_closes_clients(concertpos_sim: ConcertPOSSimulator) -> None:
    async with connect(concertpos_sim.url) as ws:
        await concertpos_sim.drop_connections()
        await asyncio.wait_for(ws.wait_closed(), 2)
        assert ws.close_code == 1012


async def test_simulator_from_args_runs_standalone() -> None:
    sim = simulator_from_args(
        ["--port", "0", "--instance", "openair", "--api-key", "cli-key", "--shards", "exon,zeus"]
    )
    assert isinstance(sim, Simulator) and isinstance(sim, ConcertPOSSimulator)
    async with sim:
        assert sim.url.endswith("/openair") and set(sim.urls) == {"exon", "zeus"}
        async with connect(sim.urls["zeus"]) as ws:
            await ws.send(json.dumps({"command": "version", "parameters": {"api_key": "cli-key"}}))
            assert json.loads(await ws.recv())["result"]["event"] == "version"
    defaults = simulator_from_args([])
    assert isinstance(defaults, ConcertPOSSimulator)
    assert defaults.host == "127.0.0.1" and defaults.rate_window == 30.0
    with pytest.raises(SystemExit):
        simulator_from_args(["--rate-limit", "0"])


def test_seeded_history_is_reproducible() -> None:
    one = ConcertPOSSimulator(seed=7, history=5)
    two = ConcertPOSSimulator(seed=7, history=5)
    assert [t.wire() for t in one.transactions] == [t.wire() for t in two.transactions]
    assert len({t.hash for t in one.transactions}) == 5


# ---------------------------------------------------------------- the vendor client's behaviour


async def test_listpos_and_verifyauth_answer_as_the_vendor_client_reads_them(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    async with connect(concertpos_sim.url) as ws:
        reply = await ask(ws, "listpos")
        assert reply["result"]["event"] == "listpos"
        points = {p["ID"]: p for p in reply["result"]["parameters"]["POS"]}
        assert set(points[1]) == {"ID", "PointOfSale", "enabled", "special", "admin", "password"}
        assert points[2]["PointOfSale"] == "Merch" and points[3]["password"] == 1
        assert points[4]["admin"] == 1
        ok = await ask(ws, "verifyauth", password="crew-only", workplace=3)
        assert ok["result"] == {
            "event": "verifyauth",
            "parameters": {"success": True, "password": "crew-only"},
        }
        wrong = await ask(ws, "verifyauth", password="guess", workplace=3)
        assert wrong["result"]["parameters"] == {"success": False, "password": None}
        assert error_of(await ask(ws, "verifyauth", password="x", workplace=99)) == (
            "invalid_parameter",
            0,
        )


async def test_json5_mode_parses_json5_and_json_mode_stays_strict(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    json5_request = "{command:'version', parameters:{api_key:'%s',},} // the vendor's way"
    async with connect(concertpos_sim.query_url(content_type="json5")) as ws:
        await ws.send(json5_request % CONCERTPOS_API_KEY)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert reply["result"]["parameters"] == {"Version": "1.0.1"}
        await ws.send("{command: 'version'")  # unbalanced
        assert error_of(json.loads(await asyncio.wait_for(ws.recv(), 2))) == ("invalid_json5", 0)
        await ws.send("[" * 10_000 + "]" * 10_000)
        assert error_of(json.loads(await asyncio.wait_for(ws.recv(), 2))) == ("invalid_json5", 0)
    async with connect(concertpos_sim.query_url()) as ws:
        await ws.send(json5_request % CONCERTPOS_API_KEY)
        assert error_of(json.loads(await asyncio.wait_for(ws.recv(), 2))) == ("invalid_json", 0)


async def test_per_command_budget_lets_the_vendor_start_up_through() -> None:
    """The vendor client's start-up spends over 100 points at once: refused under the strict
    shared budget, accepted when each command has its own."""
    start_up = ["listpos", "getlicense", "getconfig", "registerdevice", "getstatus", "version"]
    params = {"registerdevice": {"UUID": "13e12ff5-c853-4049-acbc-b1307c00691d"}}
    for mode, limited in (("shared", True), ("per_command", False)):
        sim = ConcertPOSSimulator(api_key=CONCERTPOS_API_KEY, rate_budget=mode)
        async with sim, connect(sim.url) as ws:
            kinds = [(await ask(ws, c, **params.get(c, {})))["type"] for c in start_up]
            assert ("error" in kinds) is limited, (mode, kinds)
            assert (sim.ratelimit_errors > 0) is limited
        if mode == "per_command":
            async with sim, connect(sim.url) as ws:
                reply = await ask(ws, "version")  # 100 of version's own 100 points
                assert reply["type"] == "event"
                assert error_of(await ask(ws, "version"))[0] == "ratelimit"
