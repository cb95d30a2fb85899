"""The core tables. Append new migrations at the end; never edit one that has shipped."""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("core")


@migrations()
def m001_initial(db: Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["links"].create(
        {
            "platform": str,
            "user_id": str,
            "service": str,
            "account": str,
            "token": str,  # Fernet-encrypted
            "data": str,  # Fernet-encrypted JSON
            "created": float,
            "updated": float,
        },
        pk=("platform", "user_id", "service"),
        not_null={"platform", "user_id", "service", "account"},
    )
    db["links"].create_index(["service", "account"])
    db["subscriptions"].create(
        {
            "id": int,
            "platform": str,
            "chat_id": str,
            "topic": str,
            "filter": str,
            "created": float,
        },
        pk="id",
        not_null={"platform", "chat_id", "topic"},
    )
    db["subscriptions"].create_index(["platform", "chat_id", "topic", "filter"], unique=True)
    db["subscriptions"].create_index(["topic"])
    db["audit"].create(
        {
            "id": int,
            "time": float,
            "platform": str,
            "user_id": str,
            "command": str,
            "arguments": str,
            "outcome": str,
        },
        pk="id",
    )
    db["ledger"].create(
        {
            "transaction_id": str,
            "service": str,
            "kind": str,
            "platform": str,
            "user_id": str,
            "account": str,
            "amount": int,
            "status": str,
            "fee": int,
            "debit": int,
            "result": str,
            "message": str,
            "created": float,
            "updated": float,
        },
        pk="transaction_id",
        not_null={"service", "kind", "platform", "user_id", "amount", "status"},
    )
    db["ledger"].create_index(["service", "platform", "user_id"])


@migrations()
def m002_chat_controls(db: Database) -> None:
    """Per-chat switches: a plugin or one command turned off in one chat."""
    db["chat_controls"].create(
        {
            "platform": str,
            "chat_id": str,
            "plugin": str,
            "command": str,  # "" for the whole plugin
            "enabled": int,
            "updated": float,
        },
        pk=("platform", "chat_id", "plugin", "command"),
    )


@migrations()
def m003_link_proof(db: Database) -> None:
    """Links get a proof level; claims waiting for an admin are numbered rows.

    A link made before proof levels existed proved nothing, except one that holds a token:
    only a flow the API vouched for (the ChatWars auth code) ever stored one.
    """
    db["links"].add_column("proof", str, not_null_default="claimed")
    db.execute("update links set proof = 'proven' where token is not null and token != ''")
    db["link_claims"].create(
        {
            "id": int,
            "platform": str,
            "user_id": str,
            "user_name": str,
            "chat_id": str,
            "service": str,
            "account": str,
            "status": str,  # pending, approved, rejected, withdrawn
            "created": float,
            "settled": float,
            "settled_by": str,
        },
        pk="id",
        not_null={"platform", "user_id", "service", "account", "status", "created"},
    )
    # One chat user per account is checked on every link, case-insensitively: indexed, or
    # each link would scan the table.
    db.execute("create index links_service_lower_account on links (service, lower(account))")
    db["link_claims"].create_index(["status"])
    db["link_claims"].create_index(["platform", "user_id", "service"])


@migrations()
def m004_cluster(db: Database) -> None:
    """What the processes of a cluster share through the one database file.

    ``cluster_members`` is each process's heartbeat (``status`` lists the live ones);
    ``cluster_commands`` holds the ids of commands already answered, so a command the broker
    delivers again after a worker died between its reply and its ack is not run twice.
    """
    db["cluster_members"].create(
        {
            "id": str,
            "role": str,
            "host": str,
            "pid": int,
            "started": float,
            "seen": float,
            "owns": str,  # JSON list of what the process owns
        },
        pk="id",
    )
    db["cluster_commands"].create({"id": str, "finished": float}, pk="id")
    db["cluster_commands"].create_index(["finished"])
