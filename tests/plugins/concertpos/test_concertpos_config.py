"""The ``concertpos`` config section: what it accepts, and how it refuses the rest."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot_plugins.concertpos.config import ConcertPOSConfig

KEY = "very-secret-key-4471"


def refusal(**section: object) -> str:
    with pytest.raises(ValidationError) as caught:
        ConcertPOSConfig(**section)
    text = str(caught.value)
    assert KEY not in text
    return text


def test_shard_and_instance_build_the_documented_urls_with_failover_order() -> None:
    config = ConcertPOSConfig(instance="rockfest", shard="cyton", api_key=KEY)
    assert config.endpoints() == [
        "wss://shard-cyton.ws.concertpos.com/rockfest",
        "wss://shard-exon.ws.concertpos.com/rockfest",
        "wss://shard-zeus.ws.concertpos.com/rockfest",
    ]
    assert config.pos_id == 1 and config.api_key is not None
    assert KEY not in repr(config) and KEY not in str(config.model_dump())


def test_a_full_url_or_a_list_of_urls_wins_over_shards() -> None:
    one = ConcertPOSConfig(url="wss://pos.example/?instance=x&Content-Type=json", api_key=KEY)
    assert one.endpoints() == ["wss://pos.example/?instance=x&Content-Type=json"]
    many = ConcertPOSConfig(url=["ws://127.0.0.1:1/a", "ws://127.0.0.1:2/a"], api_key=KEY)
    assert many.endpoints() == ["ws://127.0.0.1:1/a", "ws://127.0.0.1:2/a"]


def test_url_template_for_other_deployments() -> None:
    config = ConcertPOSConfig(
        instance="fest",
        shards=["a", "b"],
        url_template="ws://127.0.0.1:9000/{shard}/?instance={instance}",
        api_key=KEY,
    )
    assert config.endpoints() == [
        "ws://127.0.0.1:9000/a/?instance=fest",
        "ws://127.0.0.1:9000/b/?instance=fest",
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"url": "http://pos.example/x"}, "not a ws:// or wss:// URL"),
        ({"url": ["ws://ok.example/a", "pos.example"]}, "entry 2 is not a ws:// or wss:// URL"),
        ({"url": "ws:///nohost"}, "not a ws:// or wss:// URL"),
        ({"url": 5}, "must be a ws:// URL or a list of them"),
        ({"instance": "my fest"}, "must be an instance slug"),
        ({"instance": "f", "shard": "Exon!"}, "must be a shard name"),
        ({"instance": "f", "shards": []}, "at least one shard"),
        ({"instance": "f", "url_template": "https://x/{instance}"}, "not a ws:// or wss:// URL"),
        ({"instance": "f", "url_template": "wss://x/{slug}"}, "may only use {shard}"),
        ({"instance": "f", "url_template": "wss://x/{shard}"}, "must contain {instance}"),
        ({"instance": "f", "url_template": "wss://x/{instance"}, "unbalanced"),
        ({"instance": "f", "costs": {"refund": 3}}, "unknown command 'refund'"),
        ({"instance": "f", "costs": {"version": -1}}, "must cost 0 points or more"),
        ({"instance": "f", "costs": {"version": 150}}, "more than rate_limit (100)"),
        ({"instance": "f", "pos_id": 0}, "greater than or equal to 1"),
        ({"instance": "f", "timeout": 0}, "greater than 0"),
        ({"instance": "f", "sell_permission": "mods"}, "'admins', 'role' or 'everyone'"),
        ({"instance": "f", "reconnect_min": 5, "reconnect_max": 1}, "reconnect_max"),
        ({"instance": "f", "apikey": "typo"}, "Extra inputs are not permitted"),
        ({"instance": "f", "rate_limit": 20}, "getconfig costs 25 points"),
        ({"instance": "f", "rate_budget": "each"}, "'shared' or 'per_command'"),
        ({"instance": "f", "max_retry_after": 0}, "greater than or equal to 1"),
        ({"instance": "f", "max_retry_after": 86400}, "less than or equal to 3600"),
        ({"instance": "f", "costs": {"listpos": 101}}, "more than rate_limit (100)"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    section: dict[str, object], message: str
) -> None:
    assert message in refusal(api_key=KEY, **section)


def test_connecting_for_real_needs_a_key_and_a_place() -> None:
    assert "api_key is required unless simulate is true" in refusal(instance="fest")
    assert "set either url, or instance" in refusal(api_key=KEY)
    simulated = ConcertPOSConfig(simulate=True)
    assert simulated.api_key is None and simulated.endpoints() == []
    assert simulated.endpoints("demo")[0] == "wss://shard-exon.ws.concertpos.com/demo"


def test_costs_override_only_what_they_name() -> None:
    config = ConcertPOSConfig(instance="f", api_key=KEY, costs={"version": 60})
    table = config.costs_table()
    assert table["version"] == 60 and table["payitems"] == 1 and table["listproducts"] == 25
