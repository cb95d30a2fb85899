"""The rooms simulator on the wire: raw HTTP and form posts, no client of ours in between."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from bot_plugins.rooms.config import RoomsConfig
from bot_plugins.rooms.simulator import (
    DEFAULT_KEY,
    RoomsSimulator,
    simulator_for_config,
    simulator_from_args,
)

JOIN = {
    "function": "joinRoom",
    "performerId": "5",
    "nickname": "kim",
    "customerId": "42",
    "ipAddress": "192.0.2.1",
    "registered": "1",
    "credits": "12",
}


@pytest.fixture
async def http(rooms_sim):
    async with httpx.AsyncClient(base_url=rooms_sim.url, timeout=2.0) as client:
        yield client


async def post(http: httpx.AsyncClient, key: str, fields: dict[str, str], **params: str):
    return await http.post("/customer", params={"key": key, **params}, data=fields)


async def raw_exchange(url: str, data: bytes, *, read_all: bool = True) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(3):
            return await reader.read() if read_all else await reader.read(65536)
    finally:
        writer.close()


async def test_join_answers_in_the_documented_relaxed_form(http, rooms_key):
    response = await post(http, rooms_key, JOIN)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert re.fullmatch(r'\{ success: true, message: "", nickname: "kim_\d{4}" \}', response.text)


async def test_json_when_asked(http, rooms_key, rooms_sim):
    asked = await post(http, rooms_key, JOIN, format="json")
    rooms_sim.json_replies = True
    configured = await post(http, rooms_key, {**JOIN, "performerId": "6"})

    for response in (asked, configured):
        assert response.headers["content-type"].startswith("application/json")
        body = json.loads(response.text)
        assert body["success"] is True and re.fullmatch(r"kim_\d{4}", body["nickname"])


@pytest.mark.parametrize("key", ["", "nope"])
async def test_wrong_or_missing_key_is_refused(http, rooms_sim, key):
    response = await post(http, key, JOIN)

    assert response.status_code == 200
    assert response.text == '{ success: false, message: "Invalid API key." }'
    assert rooms_sim.members(5) == []
    assert rooms_sim.calls[0].key_ok is False


REQUIRED = {
    "joinRoom": ["performerId", "nickname", "ipAddress", "registered", "credits"],
    "leaveRoom": ["performerId", "nickname"],
    "pingRoom": ["performerId", "nickname"],
    "updateCredits": ["customerId", "credits"],
}
COMPLETE = {
    "joinRoom": JOIN,
    "leaveRoom": {"function": "leaveRoom", "performerId": "5", "nickname": "kim"},
    "pingRoom": {"function": "pingRoom", "performerId": "5", "nickname": "kim"},
    "updateCredits": {"function": "updateCredits", "customerId": "42", "credits": "3"},
}


@pytest.mark.parametrize(
    ("function", "missing"), [(f, name) for f, names in REQUIRED.items() for name in names]
)
async def test_each_required_field_is_checked(http, rooms_key, function, missing):
    fields = {k: v for k, v in COMPLETE[function].items() if k != missing}

    body = (await post(http, rooms_key, fields)).text

    assert body == f'{{ success: false, message: "Missing required field: {missing}." }}'


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"performerId": "abc"}, "Invalid performerId: must be a whole number of at least 1."),
        ({"credits": "-3"}, "Invalid credits: must be a whole number of at least 0."),
        ({"registered": "2"}, "Invalid registered: must be 0 or 1."),
        ({"customerId": ""}, "Missing required field: customerId."),  # registered=1 needs it
        ({"function": "danceRoom"}, "Unknown function."),
        ({"function": ""}, "Missing required field: function."),
    ],
)
async def test_invalid_fields_are_refused(http, rooms_key, rooms_sim, change, message):
    body = (await post(http, rooms_key, {**JOIN, **change})).text

    assert body == f'{{ success: false, message: "{message}" }}'
    assert rooms_sim.rooms() == {}


async def test_members_ping_leave_and_purge(http, rooms_key, rooms_sim, rooms_wait):
    kim = await post(http, rooms_key, JOIN)
    shown = re.search(r'nickname: "([^"]+)"', kim.text).group(1)
    again = await post(http, rooms_key, JOIN)  # a repeated join refreshes, not duplicates
    guest = {**JOIN, "nickname": "kim", "registered": "0", "credits": "0"}
    del guest["customerId"]
    await post(http, rooms_key, guest)

    assert shown in again.text
    members = rooms_sim.members(5)
    assert [m.nickname for m in members] == ["kim", "kim"]
    assert len({m.display_nickname for m in members}) == 2

    ping = {"function": "pingRoom", "performerId": "5", "customerId": "42", "nickname": shown}
    assert "success: true" in (await post(http, rooms_key, ping)).text
    assert rooms_sim.members(5)[0].pings == 1

    # Only the pinged member survives the purge window.
    for _ in range(4):
        await asyncio.sleep(rooms_sim.purge_after / 3)
        await post(http, rooms_key, ping)
    assert [m.display_nickname for m in rooms_sim.members(5)] == [shown]

    leave = {"function": "leaveRoom", "performerId": "5", "customerId": "42", "nickname": "kim"}
    assert "success: true" in (await post(http, rooms_key, leave)).text
    assert rooms_sim.rooms() == {}
    refused = await post(http, rooms_key, ping)
    assert refused.text == '{ success: false, message: "Customer is not in this room." }'


async def test_credits_only_for_registered_customers(http, rooms_key):
    sim = RoomsSimulator(key=rooms_key, registered={7: 100})
    async with sim, httpx.AsyncClient(base_url=sim.url) as client:
        update = {"function": "updateCredits", "customerId": "7", "credits": "55"}
        assert "success: true" in (await post(client, rooms_key, update)).text
        assert sim.credits(7) == 55

        unknown = (await post(client, rooms_key, {**update, "customerId": "8"})).text
        assert "registered customers" in unknown and "success: false" in unknown
        assert sim.credits(8) is None

        guest = {**JOIN, "customerId": "9", "registered": "0"}
        await post(client, rooms_key, guest)
        guest_update = (await post(client, rooms_key, {**update, "customerId": "9"})).text
        assert "success: false" in guest_update

        await post(client, rooms_key, JOIN)  # customer 42 joins as registered with 12
        assert sim.credits(42) == 12
        await post(client, rooms_key, {**update, "customerId": "42"})
        assert sim.credits_by_customer == {7: 55, 42: 55}
        assert sim.members(5)[-1].credits == 55


async def test_wrong_method_and_path(http, rooms_key):
    assert (await http.get("/customer", params={"key": rooms_key})).status_code == 405
    assert (await http.post("/other", params={"key": rooms_key}, data=JOIN)).status_code == 404


async def test_keep_alive_serves_several_requests_on_one_socket(rooms_sim, rooms_key):
    body = f"function=pingRoom&performerId=1&nickname=x&key={rooms_key}".encode()
    one = (
        f"POST /customer?key={rooms_key} HTTP/1.1\r\nHost: sim\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    last = one.replace(b"Host: sim\r\n", b"Host: sim\r\nConnection: close\r\n")

    reply = await raw_exchange(rooms_sim.url, one + one + last)

    assert reply.count(b"HTTP/1.1 200 OK") == 3
    assert reply.count(b"Customer is not in this room.") == 3
    assert rooms_sim.calls[0].fields == {  # the key in the body is not kept
        "function": "pingRoom",
        "performerId": "1",
        "nickname": "x",
    }


async def test_chunked_request_body(rooms_sim, rooms_key):
    body = b"function=joinRoom&performerId=3&nickname=lee&ipAddress=::1&registered=0&credits=0"
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:20], body[20:])) + b"0\r\n\r\n"
    request = (
        f"POST /customer?key={rooms_key} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunks

    reply = await raw_exchange(rooms_sim.url, request)

    assert b"success: true" in reply
    assert rooms_sim.members(3)[0].nickname == "lee"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"POST /customer HTTP/1.1\r\nBad Header\r\n\r\n", b"400"),
        (b"POST /customer HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"POST /customer HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", b"413"),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", b"431"),
    ],
)
async def test_malformed_http_gets_a_4xx_and_the_server_lives_on(
    rooms_sim, rooms_key, request_bytes, status
):
    reply = await raw_exchange(rooms_sim.url, request_bytes)

    assert reply.startswith(b"HTTP/1.1 " + status)
    async with httpx.AsyncClient(base_url=rooms_sim.url) as client:
        assert "success: true" in (await post(client, rooms_key, JOIN)).text


async def test_fault_hooks(http, rooms_key, rooms_sim):
    rooms_sim.fail("http_error", status=500, times=1)
    rooms_sim.fail("malformed", times=1, functions={"pingRoom"})

    first = await post(http, rooms_key, JOIN)
    second = await post(http, rooms_key, COMPLETE["pingRoom"])
    third = await post(http, rooms_key, COMPLETE["pingRoom"])

    assert first.status_code == 500
    assert second.status_code == 200 and second.text == '{ success: true, message: "'
    assert third.text == '{ success: false, message: "Customer is not in this room." }'
    assert rooms_sim.rooms() == {}  # the faulted join changed nothing
    assert [c.fault for c in rooms_sim.calls] == ["http_error", "malformed", None]


async def test_timed_fault_expires(http, rooms_key, rooms_sim):
    rooms_sim.fail("http_error", times=None, seconds=0.2)

    assert (await post(http, rooms_key, JOIN)).status_code == 503
    await asyncio.sleep(0.25)
    assert (await post(http, rooms_key, JOIN)).status_code == 200


async def test_dropped_connection(http, rooms_key, rooms_sim):
    rooms_sim.fail("drop", times=1)

    with pytest.raises(httpx.RemoteProtocolError):
        await post(http, rooms_key, JOIN)

    rooms_sim.clear_faults()
    assert (await post(http, rooms_key, JOIN)).status_code == 200


async def test_stop_ends_a_hanging_request_promptly(rooms_key):
    sim = RoomsSimulator(key=rooms_key)
    await sim.start()
    sim.fail("hang", times=None, hang=30.0)
    async with httpx.AsyncClient(base_url=sim.url, timeout=5.0) as client:
        pending = asyncio.create_task(post(client, rooms_key, JOIN))
        await asyncio.sleep(0.1)
        async with asyncio.timeout(2):
            await sim.stop()
            await sim.stop()  # twice is fine
        with pytest.raises(httpx.TransportError):
            await pending


async def test_simulator_from_args_runs_standalone():
    sim = simulator_from_args(
        ["--port", "0", "--key", "abc", "--purge-after", "2", "--json", "--seed", "3",
         "--registered", "9:40", "--registered", "10"]
    )  # fmt: skip
    assert (sim.host, sim.key, sim.purge_after, sim.json_replies) == ("127.0.0.1", "abc", 2.0, True)

    async with sim, httpx.AsyncClient(base_url=sim.url) as client:
        assert sim.url.startswith("http://127.0.0.1:") and sim.port != 0
        update = {"function": "updateCredits", "customerId": "10", "credits": "1"}
        reply = json.loads((await post(client, "abc", update)).text)
        assert reply == {"success": True, "message": ""}
        assert sim.credits_by_customer == {9: 40, 10: 1}


@pytest.mark.parametrize(
    "argv",
    [["--port", "70000"], ["--purge-after", "0"], ["--registered", "x"], ["--key", ""]],
)
def test_simulator_from_args_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        simulator_from_args(argv)

    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


async def test_simulator_for_config():
    configured = simulator_for_config(RoomsConfig(simulate=True, ping_interval=0.5))
    keyed = simulator_for_config(RoomsConfig(simulate=True, key="mine"))

    assert (configured.key, configured.purge_after) == (DEFAULT_KEY, 1.5)
    assert keyed.key == "mine"
