"""The ConcertPOS client against the simulator over real websockets.

Covers every command, the caches and rate budget (no ``ratelimit`` from the server, ever, in
normal use), reply routing without request ids, timeouts, reconnects, shard failover, bad
input and the api key staying secret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

import pytest
from concertpos_support import CONCERTPOS_API_KEY, WINDOW, ClientFactory

from bot.errors import NotConnected, ServiceError, ServiceTimeout
from bot_plugins.concertpos.client import ConcertPOSClient
from bot_plugins.concertpos.config import ConcertPOSConfig
from bot_plugins.concertpos.errors import (
    AmbiguousName,
    BudgetExhausted,
    ConcertPOSAuthError,
    ConcertPOSInstanceError,
    ConcertPOSLicenseError,
    ConcertPOSNotConnected,
    ConcertPOSTimeout,
    InvalidRequest,
    OutcomeUnknown,
    RateLimited,
    UnknownPaymentMethod,
    UnknownProduct,
)
from bot_plugins.concertpos.models import PosEvent, SaleItem
from bot_plugins.concertpos.simulator import ConcertPOSSimulator, SimPointOfSale

DEVICE = "13e12ff5-c853-4049-acbc-b1307c00691d"


def events_into(client: ConcertPOSClient) -> asyncio.Queue[PosEvent]:
    queue: asyncio.Queue[PosEvent] = asyncio.Queue()
    client.add_listener(queue.put_nowait)
    return queue


# ---------------------------------------------------------------- every command


async def test_license_is_fetched_once_at_start_and_cached(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    assert concertpos_sim.command_counts["getlicense"] == 1
    license_ = await concertpos_client.get_license()
    await concertpos_client.get_license()
    assert concertpos_sim.command_counts["getlicense"] == 1
    assert license_.active and license_.name == "Demo Festival" and license_.type == "Pro"
    assert license_.device_limit is None  # "0" means unlimited
    assert license_.pos_limit == 5
    key = concertpos_sim.license["LicenseKey"]
    assert license_.license_key == key
    assert key not in repr(license_) and key not in license_.masked_key


async def test_products_and_payment_methods_are_typed(
    concertpos_client: ConcertPOSClient,
) -> None:
    products = await concertpos_client.list_products()
    assert [p.name for p in products] == ["Beer", "Cola", "Water", "Bratwurst", "Fries"]
    beer = products[0]
    assert beer.id == 1 and beer.price == Decimal("4.50") and beer.deposit
    assert not products[3].deposit
    methods = await concertpos_client.list_payment_methods()
    assert [(m.id, m.name, m.color) for m in methods] == [
        (1, "Cash", "#28a745"),
        (2, "Card", "#007bff"),
    ]
    merch = await concertpos_client.list_products(pos_id=2)
    assert [p.name for p in merch] == ["Tour Shirt"] and merch[0].crew_blocked


async def test_config_deposit_version_status_and_device(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    config = await concertpos_client.get_config()
    assert config.values["currency"] == "EUR"
    masked = config.masked()
    assert masked["currency"] == "EUR"
    assert concertpos_sim.config["license_key"] not in masked["license_key"]

    assert (await concertpos_client.get_deposit()).price == Decimal("2.00")
    assert await concertpos_client.version() == "1.0.1"
    status = await concertpos_client.get_status()
    assert status.ok and status.message == "All systems are operational"

    registered = await concertpos_client.register_device(DEVICE.upper())
    assert registered.uuid == DEVICE and registered.parameters["new"] is True
    assert DEVICE in concertpos_sim.devices
    again = await concertpos_client.register_device(DEVICE)
    assert again.parameters["new"] is False


async def test_sale_is_booked_priced_with_deposit_and_listed(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    before = len(concertpos_sim.transactions)
    sale = await concertpos_client.pay_items(
        [SaleItem(1, 1), SaleItem(4, 1), SaleItem(1, 1)], payment_method=2
    )
    # two beers (4.50 + 2.00 deposit each) merged into one line, one sausage
    assert [(line.product.name, line.amount) for line in sale.lines] == [
        ("Beer", 2),
        ("Bratwurst", 1),
    ]
    assert sale.total == Decimal("17.00")
    assert sale.payment_method.name == "Card" and sale.items_booked == 3
    assert len(concertpos_sim.transactions) == before + 2

    listed = await concertpos_client.list_transactions(limit=2)
    assert listed.count == 2
    newest = listed.transactions
    assert {t.product_id for t in newest} == {1, 4}
    beer_row = next(t for t in newest if t.product_id == 1)
    assert beer_row.amount_product == 2 and beer_row.amount_money == Decimal("13.00")
    assert beer_row.payment_id == 2 and beer_row.pos_id == 1
    assert len(beer_row.hash) == 128 and beer_row.timestamp is not None

    everything = await concertpos_client.list_transactions(limit=None)
    pos1 = [t for t in concertpos_sim.transactions if t.pos_id == 1]
    assert everything.count == len(pos1) == len(everything.transactions)


async def test_names_resolve_by_id_exact_name_or_unambiguous_prefix(
    concertpos_client: ConcertPOSClient,
) -> None:
    assert (await concertpos_client.find_product("be")).name == "Beer"
    assert (await concertpos_client.find_product("WATER")).id == 3
    assert (await concertpos_client.find_product(4)).name == "Bratwurst"
    assert (await concertpos_client.find_product("5")).name == "Fries"
    with pytest.raises(AmbiguousName, match=r"Beer.*Bratwurst"):
        await concertpos_client.find_product("b")
    with pytest.raises(UnknownProduct, match="'Pizza'"):
        await concertpos_client.find_product("Pizza")
    assert (await concertpos_client.find_payment_method("card")).id == 2
    with pytest.raises(UnknownPaymentMethod):
        await concertpos_client.find_payment_method("Voucher")  # not offered at POS 1


# ---------------------------------------------------------------- bad input


async def test_bad_sales_are_refused_before_anything_is_sent(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    bad = [
        ([SaleItem(1, 0)], 1, InvalidRequest, "greater than 0"),
        ([SaleItem(1, -2)], 1, InvalidRequest, "greater than 0"),
        ([SaleItem(1, 101)], 1, InvalidRequest, "At most 100"),
        ([SaleItem(1, 60), SaleItem(1, 60)], 1, InvalidRequest, "At most 100"),
        ([], 1, InvalidRequest, "at least one product"),
        ([SaleItem(99, 1)], 1, UnknownProduct, "no product '99'"),
        ([SaleItem(6, 1)], 1, UnknownProduct, "no product '6'"),  # sold at POS 2 only
        ([SaleItem(1, 1)], 3, UnknownPaymentMethod, "no payment method '3'"),
        ([SaleItem(1, True)], 1, InvalidRequest, "whole number"),
    ]
    for items, method, error, text in bad:
        with pytest.raises(error, match=text) as caught:
            await concertpos_client.pay_items(items, method)
        assert isinstance(caught.value, ServiceError)
    with pytest.raises(InvalidRequest):
        await concertpos_client.pay_items([SaleItem(1, 1)], 1, pos_id=0)
    assert concertpos_sim.command_counts["payitems"] == 0


async def test_bad_arguments_of_other_commands_are_refused_locally(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    for limit in (0, -1, 1001):
        with pytest.raises(InvalidRequest, match="between 1 and 1000"):
            await concertpos_client.list_transactions(limit=limit)
    with pytest.raises(InvalidRequest, match="not a device UUID"):
        await concertpos_client.register_device("not-a-uuid")
    assert concertpos_sim.command_counts["listtransactions"] == 0
    assert concertpos_sim.command_counts["registerdevice"] == 0


async def test_a_bad_api_key_gives_a_clear_error_without_the_key(
    concertpos_client_factory: ClientFactory,
    concertpos_sim: ConcertPOSSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "wrong-key-93ab1f"
    caplog.set_level(logging.DEBUG)
    client = await concertpos_client_factory(api_key=wrong)
    with pytest.raises(ConcertPOSAuthError) as caught:
        await client.list_products()
    assert caught.value.code == "api_key_mismatch"
    assert caught.value.message == "ConcertPOS rejected the configured api key for this instance."
    # concurrent requests each get their own error, none hangs
    results = await asyncio.gather(
        client.get_status(), client.version(), client.get_deposit(), return_exceptions=True
    )
    assert all(isinstance(r, ConcertPOSAuthError) for r in results)
    assert concertpos_sim.errors_sent["api_key_mismatch"] >= 5
    for text in [caplog.text, *(str(r) for r in results), str(caught.value)]:
        assert wrong not in text and CONCERTPOS_API_KEY not in text


async def test_unknown_instance_and_instance_without_key(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    elsewhere = concertpos_sim.url.rsplit("/", 1)[0] + "/no-such-festival"
    client = await concertpos_client_factory(urls=[elsewhere])
    with pytest.raises(ConcertPOSInstanceError, match="does not exist"):
        await client.get_status()

    async with ConcertPOSSimulator(api_key=None) as keyless:
        client = await concertpos_client_factory(urls=[keyless.url], fetch_license=False)
        with pytest.raises(ConcertPOSAuthError, match="no api key") as caught:
            await client.version()
        assert caught.value.code == "no_api_key"


async def test_pos_password_is_sent_when_configured(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    concertpos_sim.points_of_sale[3] = SimPointOfSale(3, "Backstage", [4], [1], password="s3cr3t")
    without = await concertpos_client_factory(pos_id=3)
    with pytest.raises(ConcertPOSAuthError) as caught:
        await without.list_products()
    assert caught.value.code == "invalid_password" and "s3cr3t" not in caught.value.message
    with_password = await concertpos_client_factory(pos_id=3, pos_password="s3cr3t")
    sale = await with_password.pay_items([SaleItem(4, 2)], 1)
    assert sale.total == Decimal("8.00") and sale.pos_id == 3


# ---------------------------------------------------------------- caches and rate budget


async def test_a_burst_of_product_lists_costs_one_request(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    concurrent = await asyncio.gather(*(concertpos_client.list_products() for _ in range(50)))
    sequential = [await concertpos_client.list_products() for _ in range(50)]
    assert all(result == concurrent[0] for result in [*concurrent, *sequential])
    assert concertpos_sim.command_counts["listproducts"] == 1
    assert concertpos_sim.ratelimit_errors == 0


async def test_updatepos_reaches_listeners_and_refreshes_prices(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    events = events_into(concertpos_client)
    assert (await concertpos_client.find_product("Beer")).price == Decimal("4.50")
    await concertpos_client.get_deposit()
    concertpos_sim.set_price(1, "5.20")
    concertpos_sim.deposit = Decimal("2.50")
    assert await concertpos_sim.broadcast_updatepos() == 1
    event = await asyncio.wait_for(events.get(), 2)
    assert event.is_updatepos and event.kind == "broadcast"
    assert (await concertpos_client.find_product("Beer")).price == Decimal("5.20")
    assert (await concertpos_client.get_deposit()).price == Decimal("2.50")
    assert concertpos_sim.command_counts["listproducts"] == 2
    sale = await concertpos_client.pay_items([SaleItem(1, 1)], 1)
    assert sale.total == Decimal("7.70")
    # the license is not part of the POS data: still fetched only once
    await concertpos_client.get_license()
    assert concertpos_sim.command_counts["getlicense"] == 1


async def test_budget_spreads_a_burst_so_the_server_never_limits_us(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    # 20 x getstatus at 15 points = 300 points: three windows' worth
    client = await concertpos_client_factory(status_ttl=0, fetch_license=False)
    started = time.monotonic()
    results = await asyncio.gather(*(client.get_status(refresh=True) for _ in range(20)))
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert concertpos_sim.command_counts["getstatus"] == 20
    assert concertpos_sim.ratelimit_errors == 0
    assert elapsed >= 2 * WINDOW  # it really waited instead of sending at once
    snapshot = client.rate_budget()
    assert snapshot.limit == 100 and 0 < snapshot.used <= 100


async def test_budget_refuses_when_waiting_would_outlast_the_timeout(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(
        rate_window=5.0, timeout=0.3, version_ttl=0, fetch_license=False
    )
    await client.version()
    await client.version(refresh=True)  # 100 of 100 points spent
    with pytest.raises(BudgetExhausted, match=r"try again in [56] s") as caught:
        await client.version(refresh=True)
    assert caught.value.code == "budget" and 4.5 < caught.value.retry_after <= 5.1
    assert isinstance(caught.value, RateLimited)
    assert concertpos_sim.command_counts["version"] == 2
    # a cheap command still fits? No: the window is full, and it is refused the same way
    with pytest.raises(BudgetExhausted):
        await client.list_transactions(limit=1)
    assert concertpos_sim.ratelimit_errors == 0


async def test_a_server_ratelimit_is_reported_and_honoured(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    # Another program spends the instance's points behind our back.
    other = await concertpos_client_factory(fetch_license=False, version_ttl=0)
    client = await concertpos_client_factory(fetch_license=False, version_ttl=0)
    await other.version()
    await other.version(refresh=True)
    with pytest.raises(RateLimited, match="rate limiting version; try again in 1 s") as caught:
        await client.version()
    assert caught.value.code == "ratelimit" and 0 < caught.value.retry_after <= WINDOW
    assert concertpos_sim.ratelimit_errors == 1
    # the client now waits out retry_after before sending again, so this one succeeds
    assert await client.version(refresh=True) == "1.0.1"
    assert concertpos_sim.ratelimit_errors == 1


# ---------------------------------------------------------------- routing and timeouts


async def test_concurrent_commands_each_get_their_own_reply(
    concertpos_client: ConcertPOSClient,
) -> None:
    products, methods, deposit, transactions, status, license_ = await asyncio.gather(
        concertpos_client.list_products(),
        concertpos_client.list_payment_methods(),
        concertpos_client.get_deposit(),
        concertpos_client.list_transactions(limit=3),
        concertpos_client.get_status(),
        concertpos_client.get_license(refresh=True),
    )
    assert products[0].name == "Beer" and methods[0].name == "Cash"
    assert deposit.price == Decimal(2) and len(transactions.transactions) == 3
    assert status.ok and license_.active


async def test_concurrent_sales_are_each_booked_once(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    before = len(concertpos_sim.transactions)
    sales = await asyncio.gather(
        *(concertpos_client.pay_items([SaleItem(5, n)], 1) for n in range(1, 6))
    )
    assert sorted(s.total for s in sales) == [Decimal("3.50") * n for n in range(1, 6)]
    assert concertpos_sim.command_counts["payitems"] == 5
    assert len(concertpos_sim.transactions) == before + 5


async def test_a_late_reply_is_swallowed_not_given_to_the_next_caller(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    # The retry waits up to half its timeout for the late reply before it recycles.
    client = await concertpos_client_factory(
        timeout=1.0, late_reply_grace=5.0, status_ttl=0, fetch_license=False
    )
    concertpos_sim.delays["getstatus"] = 1.2
    concertpos_sim.status = {"status": "warning", "message": "old news"}
    with pytest.raises(ConcertPOSTimeout) as caught:
        await client.get_status()
    assert isinstance(caught.value, ServiceTimeout) and caught.value.code == "timeout"
    concertpos_sim.delays.clear()
    concertpos_sim.status = {"status": "success", "message": "fresh"}
    fresh = await client.get_status(refresh=True)
    assert fresh.message == "fresh"
    assert client.state().reconnects == 0  # the late reply arrived: no resync needed


async def test_a_reply_that_never_comes_times_out_and_resyncs(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(timeout=0.2, fetch_license=False)
    concertpos_sim.muted.add("getdeposit")
    with pytest.raises(ConcertPOSTimeout, match=r"did not answer getdeposit within 0\.2 s"):
        await client.get_deposit()
    concertpos_sim.muted.clear()
    # after another timeout the client reconnects to get replies back in step
    for _ in range(50):
        if client.state().reconnects:
            break
        await asyncio.sleep(0.05)
    assert client.state().reconnects == 1
    assert await client.wait_connected(2)
    assert (await client.get_deposit()).price == Decimal(2)


async def test_a_lost_sale_confirmation_is_never_retried(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(timeout=0.3, fetch_license=False)
    await client.list_products()
    await client.list_payment_methods()
    before = len(concertpos_sim.transactions)
    concertpos_sim.delays["payitems"] = 0.6
    with pytest.raises(OutcomeUnknown, match="may or may not be booked"):
        await client.pay_items([SaleItem(4, 1)], 1)
    await asyncio.sleep(0.4)
    assert concertpos_sim.command_counts["payitems"] == 1
    assert len(concertpos_sim.transactions) == before + 1  # it was booked, exactly once


async def test_a_dropped_connection_during_a_sale_reports_an_unknown_outcome(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(fetch_license=False)
    await client.list_products()
    await client.list_payment_methods()
    concertpos_sim.delays["payitems"] = 0.5
    sale = asyncio.create_task(client.pay_items([SaleItem(4, 1)], 1))
    await asyncio.sleep(0.1)
    await concertpos_sim.drop_connections()
    with pytest.raises(OutcomeUnknown):
        await sale
    assert concertpos_sim.command_counts["payitems"] == 1


# ---------------------------------------------------------------- connection


async def test_reconnects_after_a_drop_and_forgets_possibly_stale_prices(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    await concertpos_client.list_products()
    await concertpos_sim.drop_connections()
    for _ in range(100):
        if concertpos_client.state().reconnects == 1 and concertpos_client.connected:
            break
        await asyncio.sleep(0.02)
    assert concertpos_client.connected
    concertpos_sim.set_price(2, "3.40")  # changed while we were away, no broadcast seen
    cola = await concertpos_client.find_product("Cola")
    assert cola.price == Decimal("3.40")
    assert concertpos_client.state().reconnects == 1
    assert concertpos_sim.command_counts["getlicense"] == 1  # not refetched on reconnect


async def test_fails_over_when_the_first_shard_is_down(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    first, second = concertpos_sim.urls["exon"], concertpos_sim.urls["cyton"]
    await concertpos_sim.stop_shard("exon")
    client = await concertpos_client_factory(urls=[first, second])
    state = client.state()
    assert state.connected and state.shard_index == 1 and state.url == second
    assert (await client.list_products())[0].name == "Beer"


async def test_moves_to_the_next_shard_when_its_shard_goes_down(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    urls = [concertpos_sim.urls["exon"], concertpos_sim.urls["cyton"]]
    client = await concertpos_client_factory(urls=urls)
    assert client.state().shard_index == 0
    events = events_into(client)
    await concertpos_sim.stop_shard("exon")
    for _ in range(100):
        if client.connected and client.state().shard_index == 1:
            break
        await asyncio.sleep(0.02)
    assert client.state().shard_index == 1
    # events are shared across shards: a broadcast still reaches us
    await concertpos_sim.broadcast_updatepos()
    assert (await asyncio.wait_for(events.get(), 2)).is_updatepos


async def test_broadcasts_reach_clients_on_every_shard(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    on_exon = await concertpos_client_factory(urls=[concertpos_sim.urls["exon"]])
    on_cyton = await concertpos_client_factory(urls=[concertpos_sim.urls["cyton"]])
    queues = [events_into(on_exon), events_into(on_cyton)]
    assert await concertpos_sim.broadcast("maintenance", {"in": 5}) == 2
    for queue in queues:
        event = await asyncio.wait_for(queue.get(), 2)
        assert (event.kind, event.name, event.parameters) == ("broadcast", "maintenance", {"in": 5})


async def test_without_any_shard_calls_fail_fast(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    url = concertpos_sim.urls["exon"]
    await concertpos_sim.stop_shard("exon")
    client = await concertpos_client_factory(urls=[url], start=False)
    assert await client.start(wait=0.2) is False
    started = time.monotonic()
    with pytest.raises(ConcertPOSNotConnected) as caught:
        await client.list_products()
    assert isinstance(caught.value, NotConnected) and time.monotonic() - started < 0.5
    # the shard comes back: the client finds it on its own
    await concertpos_sim.start_shard("exon")
    assert await client.wait_connected(3)
    assert (await client.list_payment_methods())[0].name == "Cash"


async def test_stray_frames_are_ignored_and_unknown_messages_published(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    events = events_into(concertpos_client)
    for frame in ["not json", "[1,2]", '{"type":"event"}', '{"type":"mystery","result":{}}']:
        await concertpos_sim.send_raw(frame)
    await concertpos_sim.send_raw('{"type":"command","command":"hello","result":"x"}')
    await concertpos_sim.send_raw('{"type":"event","result":{"event":"listpos","parameters":{}}}')
    first = await asyncio.wait_for(events.get(), 2)
    second = await asyncio.wait_for(events.get(), 2)
    assert (first.kind, first.name) == ("command", "hello")
    assert (second.kind, second.name) == ("event", "listpos")
    # an error nobody waits for is published too, with a safe message
    await concertpos_sim.send_raw('{"type":"error","result":{"error":"invalid_json5","code":0}}')
    orphan = await asyncio.wait_for(events.get(), 2)
    assert (orphan.kind, orphan.name) == ("error", "invalid_json5")
    assert "bot bug" in orphan.parameters["message"]
    assert concertpos_client.connected
    assert (await concertpos_client.get_status()).ok


async def test_an_error_named_after_a_command_goes_to_that_command(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(fetch_license=False, timeout=1.0)
    concertpos_sim.muted.update({"getlicense", "getstatus"})
    status = asyncio.create_task(client.get_status())  # older: would get an unnamed error
    license_ = asyncio.create_task(client.get_license())
    await asyncio.sleep(0.1)
    # the official client's sign of a bad license: an error called "getlicense"
    await concertpos_sim.send_raw('{"type":"error","result":{"error":"getlicense","code":0}}')
    with pytest.raises(ConcertPOSLicenseError, match="license as invalid"):
        await license_
    concertpos_sim.muted.clear()
    await concertpos_sim.send_raw(
        '{"type":"event","result":{"event":"getstatus","parameters":{"status":"success"}}}'
    )
    assert (await status).ok


async def test_a_failing_listener_does_not_break_the_client(
    concertpos_client: ConcertPOSClient, concertpos_sim: ConcertPOSSimulator
) -> None:
    def broken(event: PosEvent) -> None:
        raise RuntimeError("listener bug")

    async def broken_async(event: PosEvent) -> None:
        raise RuntimeError("async listener bug")

    concertpos_client.add_listener(broken)
    concertpos_client.add_listener(broken_async)
    events = events_into(concertpos_client)
    await concertpos_sim.broadcast_updatepos()
    assert (await asyncio.wait_for(events.get(), 2)).is_updatepos
    concertpos_client.remove_listener(broken)
    assert (await concertpos_client.list_products())[0].id == 1


async def test_query_string_urls_and_config_built_clients_work(
    concertpos_sim: ConcertPOSSimulator,
) -> None:
    config = ConcertPOSConfig(
        url=[concertpos_sim.query_url("cyton")],
        api_key=CONCERTPOS_API_KEY,
        pos_id=2,
        rate_window=WINDOW,
        timeout=2,
    )
    async with ConcertPOSClient.from_config(config) as client:
        assert client.connected and client.pos_id == 2
        assert [p.name for p in await client.list_products()] == ["Tour Shirt"]


async def test_simulate_config_runs_a_matching_simulator() -> None:
    config = ConcertPOSConfig(simulate=True, pos_id=7)
    async with ConcertPOSSimulator.for_config(config) as sim:
        assert sim.instance == "demo" and config.endpoints(sim.instance)[0].endswith("/demo")
        async with ConcertPOSClient.from_config(
            config, urls=[sim.url], api_key=sim.api_key
        ) as client:
            sale = await client.pay_items([SaleItem(3, 2)], 1)
            assert sale.pos_id == 7 and sale.total == Decimal("9.00")


# ---------------------------------------------------------------- issue 15


async def test_points_of_sale_and_password_check(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(pos_id=3, pos_password="crew-only")
    listing = await client.list_points_of_sale()
    assert [(p.id, p.name, p.password, p.selectable) for p in listing] == [
        (1, "Bar", False, True),
        (2, "Merch", False, True),
        (3, "Backstage", True, True),
        (4, "Office", False, False),
    ]
    assert await client.verify_auth() is True
    assert await client.verify_auth(1) is False  # no password configured for it: not asked
    assert concertpos_sim.command_counts["verifyauth"] == 1
    assert [p.name for p in await client.list_products()] == ["Beer", "Cola", "Water"]
    wrong = await concertpos_client_factory(pos_id=3, pos_password="guess")
    assert await wrong.verify_auth() is False


async def test_a_json5_url_sends_json5_and_reads_json5_replies(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(urls=[concertpos_sim.query_url(content_type="json5")])
    sale = await client.pay_items([SaleItem(1, 1)], 1)
    assert sale.total == Decimal("6.50")
    assert concertpos_sim.errors_sent == {}
    # a JSON5 reply (unquoted keys, trailing comma) is read in this mode
    events = events_into(client)
    await concertpos_sim.send_raw(
        "{type:'broadcast', result:{message:'updatepos', parameters:{},},}"
    )
    assert (await asyncio.wait_for(events.get(), 2)).is_updatepos


async def test_the_per_command_budget_is_configurable_and_shared_stays_the_default(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    assert ConcertPOSConfig(simulate=True).rate_budget == "shared"
    concertpos_sim.rate_budget = "per_command"
    # A window of 5 s and a timeout of 2 s: had any call to wait for room, it would fail
    # with BudgetExhausted instead of waiting.
    client = await concertpos_client_factory(
        rate_budget="per_command", fetch_license=False, rate_window=5.0
    )
    # 50 + 25 + 20 + 25 + 15 points at once: over 100, each command well inside its own
    await asyncio.gather(
        client.version(),
        client.get_config(),
        client.list_payment_methods(),
        client.list_points_of_sale(),
        client.get_status(),
    )
    assert concertpos_sim.ratelimit_errors == 0
    assert client.rate_budget().used == 50  # the busiest command's budget
