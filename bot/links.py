"""Links with proof levels, claims that wait for an admin, and the ``links`` commands.

Why: a chat user who types ``link deepbot ninja_turtle`` has proved nothing, and without
this anyone could spend any viewer's points. So every link has a proof level
(:class:`~bot.store.Proof`): **proven** when the API vouched for it (the ChatWars auth code),
**approved** when an admin approved the claim, **claimed** otherwise. Commands that act on the
linked account's value (``@command(..., trusted_link=True)``) need proven or approved; reading
public data does not.

A plugin's link command declares what its flow proves (``@command("link deepbot",
link_proof=Proof.CLAIMED)``) and calls :func:`claim` (``ctx.claim_link``). With
``plugins.<name>.link_approval: admins`` (the default) a claim waits as a numbered row for
``links approve N`` / ``links reject N``; admins hear of it on the ``links.pending`` topic and
in ``status``; an admin's own claim is approved at once. ``link_approval: none`` is for a
community that trusts its members: a claim then counts as approved (decided when used, so
tightening the setting later takes effect at once).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .alerts import Topic, subscription_command
from .commands import Command, Permission, command
from .errors import UserError
from .store import Link, LinkClaim, LinkTaken, Proof
from .text import clip

if TYPE_CHECKING:
    from .app import Bot
    from .context import Context

__all__ = [
    "PENDING_TOPIC",
    "ClaimOutcome",
    "LinkApproval",
    "LinkTaken",
    "Proof",
    "claim",
    "is_trusted",
    "link_problem",
    "link_trusted",
]

log = logging.getLogger(__name__)

LinkApproval = Literal["admins", "none"]

#: the alert topic admins' chats subscribe to (``links alerts on``) to hear of new claims
PENDING_TOPIC = "links.pending"

#: new claims one chat user may make per hour: each one alerts the admins, so a user trying
#: name after name must not flood their chats (counted in the store: restarts do not reset it)
CLAIMS_PER_HOUR = 5


# --------------------------------------------------------------------------- rules


def approval_for(bot: Bot, service: str) -> str:
    """``plugins.<service>.link_approval`` of the running plugin; ``admins`` when unknown."""
    runtime = bot.plugins.runtimes.get(service)
    config = runtime.config if runtime is not None else None
    if config is None:
        config = bot.loaded_config.validated.get(service)
    return str(getattr(config, "link_approval", "admins"))


def link_trusted(link: Link, approval: str) -> bool:
    """Whether the link may act on the account's value: proven, approved, or claimed where
    the plugin's ``link_approval`` is ``none``. For plugin code that holds its config."""
    return link.proof is not Proof.CLAIMED or approval == "none"


def is_trusted(bot: Bot, link: Link) -> bool:
    """:func:`link_trusted`, with the ``link_approval`` of the plugin running the service."""
    return link_trusted(link, approval_for(bot, link.service))


def link_command(bot: Bot, service: str) -> Command | None:
    """The command a user links ``service`` with, as the running plugins declare it.

    A command that declares ``link_proof`` wins; otherwise a command of the plugin with the
    word "link" in its name (``cw link``, ``link deepbot``).
    """
    fallback: Command | None = None
    for cmd in bot.registry.commands:
        if (cmd.service or cmd.plugin) != service:
            continue
        if cmd.link_proof is not None:
            return cmd
        if fallback is None and "link" in cmd.path and cmd.permission < Permission.ADMIN:
            fallback = cmd
    return fallback


def link_hint(bot: Bot, service: str) -> str:
    prefix = bot.settings.bot.prefix
    cmd = link_command(bot, service)
    return cmd.usage(prefix) if cmd is not None else f"{prefix}link {service} ..."


def link_problem(ctx: Context, cmd: Command) -> str | None:
    """Why the caller's link does not allow ``cmd`` (the dispatcher's refusal), or None."""
    bot = ctx.bot
    service = cmd.service or cmd.plugin
    link = ctx.link(service)
    if link is None:
        return f"You need to link your {service} account first: {link_hint(bot, service)}"
    if not cmd.trusted_link or is_trusted(bot, link):
        return None
    prefix = bot.settings.bot.prefix
    account = clip(link.account, 60)
    pending = ctx.store.pending_claim_for(ctx.platform, ctx.user_id, service)
    if pending is not None:
        return (
            f"Your {service} link to {account} is waiting for an admin's approval "
            f"(claim #{pending.id}); {prefix}{cmd.name} needs an approved link. You will be "
            "told when an admin has decided."
        )
    return (
        f"Your {service} link to {account} is only claimed, and {prefix}{cmd.name} needs "
        f"one an admin approved. Link again ({link_hint(bot, service)}) to ask an admin."
    )


# --------------------------------------------------------------------------- claiming


@dataclass(frozen=True)
class ClaimOutcome:
    """What a link command did: the link, and the claim waiting for an admin, if any."""

    link: Link
    claim: LinkClaim | None
    #: an admin's own claim, approved at once
    admin_approved: bool = False

    @property
    def pending(self) -> bool:
        return self.claim is not None

    def note(self, prefix: str) -> str:
        """A sentence for the claimant's reply ("" when there is nothing to add)."""
        if self.claim is not None:
            return (
                f"An admin has to approve it (claim #{self.claim.id}) before commands that "
                f"act on the account work; you will be told here. Check with {prefix}links."
            )
        if self.admin_approved:
            return "As you are an admin, it is approved at once."
        return ""


async def claim(
    ctx: Context,
    account: str,
    *,
    service: str | None = None,
    proof: Proof | None = None,
    token: str | None = None,
    data: dict[str, Any] | None = None,
) -> ClaimOutcome:
    """Link the caller to ``account`` at the proof the link flow declares.

    A claim (proof ``claimed``) under ``link_approval: admins`` is stored as a link waiting
    for an admin plus a numbered claim, and admins are alerted; an admin's own claim is
    approved at once. Relinking the same account never lowers its proof. Raises
    :class:`~bot.store.LinkTaken` (a UserError) when another chat user holds the account.
    """
    bot = ctx.bot
    store = ctx.store
    service = service or ctx.service
    declared = proof or (ctx.command.link_proof if ctx.command else None) or Proof.CLAIMED
    level = Proof(declared)
    admin_approved = False
    if level is Proof.CLAIMED and ctx.is_admin:
        level, admin_approved = Proof.APPROVED, True
    current = store.get_link(ctx.platform, ctx.user_id, service)
    if (
        current is not None
        and current.account.lower() == account.lower()
        and current.proof.rank > level.rank
    ):
        level, admin_approved = current.proof, False
    needs_admin = level is Proof.CLAIMED and approval_for(bot, service) == "admins"
    before = store.pending_claim_for(ctx.platform, ctx.user_id, service) if needs_admin else None
    repeat = before is not None and before.account.lower() == account.lower()
    if needs_admin and not repeat:
        made = store.claims_since(ctx.platform, ctx.user_id, time.time() - 3600)
        if made >= CLAIMS_PER_HOUR:
            raise UserError(
                f"You made {made} link claims in the last hour, as many as admins are asked "
                "to look at; try again later."
            )
    link = store.set_link(
        ctx.platform, ctx.user_id, service, account, token=token, data=data, proof=level
    )
    ctx.forget_link(service)
    if admin_approved:
        store.audit(
            ctx.platform,
            ctx.user_id,
            "links approve",
            {"service": service, "account": account},
            "approved at once: an admin's own claim",
        )
    pending: LinkClaim | None = None
    if needs_admin:
        pending = store.add_claim(
            ctx.platform,
            ctx.user_id,
            service,
            account,
            user_name=ctx.user_name,
            chat_id=ctx.chat_id,
        )
        if before is None or before.id != pending.id:
            _announce(bot, pending)
    return ClaimOutcome(link, pending, admin_approved)


def describe_claim(claim: LinkClaim, now: float | None = None) -> str:
    """``#12 telegram:483917265 (alice) deepbot ninja_turtle, 3 min ago``."""
    age = _ago(max(0.0, (now if now is not None else time.time()) - claim.created))
    name = f" ({clip(claim.user_name, 40)})" if claim.user_name else ""
    return (
        f"#{claim.id} {claim.platform}:{clip(claim.user_id, 40)}{name} {claim.service} "
        f"{clip(claim.account, 60)}, {age}"
    )


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def _announce(bot: Bot, pending: LinkClaim) -> None:
    prefix = bot.settings.bot.prefix
    bot.alerts.publish(
        PENDING_TOPIC,
        f"New link claim {describe_claim(pending)}. Approve with {prefix}links approve "
        f"{pending.id} or reject with {prefix}links reject {pending.id}.",
        {"claim": pending.id, "service": pending.service},
    )


# --------------------------------------------------------------------------- settling


def _pending(ctx: Context, number: int) -> tuple[LinkClaim, Link]:
    """The pending claim ``number`` and the link it is about; UserError if it is settled."""
    store = ctx.store
    found = store.get_claim(number)
    if found is None:
        raise UserError(f"There is no link claim #{number}. See {_prefix(ctx)}links pending.")
    if found.status != "pending":
        raise UserError(f"Claim #{number} is already {found.status}.")
    link = store.get_link(found.platform, found.user_id, found.service)
    if link is None or link.account.lower() != found.account.lower():
        store.settle_claim(number, "withdrawn", _who(ctx))
        raise UserError(
            f"Claim #{number} is out of date: that user no longer links "
            f"{clip(found.account, 60)}. Nothing was changed."
        )
    return found, link


def approve(bot: Bot, number: int, by: str) -> bool:
    """Approve a pending claim: its link becomes ``approved``. False if not pending."""
    store = bot.store
    found = store.get_claim(number)
    if found is None:
        return False
    with store.transaction():
        if not store.settle_claim(number, "approved", by):
            return False
        link = store.get_link(found.platform, found.user_id, found.service)
        if link is not None and link.proof is Proof.CLAIMED:
            store.set_link_proof(found.platform, found.user_id, found.service, Proof.APPROVED)
    return True


async def _tell(bot: Bot, found: LinkClaim, text: str) -> None:
    """Tell the claimant in the chat they claimed from; a failed send changes nothing."""
    if not found.chat_id:
        return
    try:
        await bot.send(found.platform, found.chat_id, text)
    except Exception:
        log.exception(
            "could not tell %s:%s about claim #%s", found.platform, found.user_id, found.id
        )


def _who(ctx: Context) -> str:
    return f"{ctx.platform}:{ctx.user_id}"


def _prefix(ctx: Context) -> str:
    return ctx.bot.settings.bot.prefix


def _addressed(found: LinkClaim) -> str:
    return clip(found.user_name, 40) if found.user_name else f"{found.platform}:{found.user_id}"


# --------------------------------------------------------------------------- commands


def _proof_text(ctx: Context, link: Link) -> str:
    if link.proof is Proof.PROVEN:
        return f"proven by {link.service}"
    if link.proof is Proof.APPROVED:
        return "approved by an admin"
    if approval_for(ctx.bot, link.service) == "none":
        return "claimed; counts as approved here"
    pending = ctx.store.pending_claim_for(ctx.platform, ctx.user_id, link.service)
    if pending is not None:
        return f"claimed, waiting for an admin: claim #{pending.id}"
    return "claimed, not approved: link again to ask an admin"


@command(private=True)
async def links(ctx: Context) -> str:
    """Show the accounts you have linked and how each is proven (tokens are never shown)."""
    rows = ctx.store.links_for(ctx.platform, ctx.user_id)
    if not rows:
        return "You have no linked accounts."
    return "\n".join(
        f"{link.service}: {clip(link.account, 60)} ({_proof_text(ctx, link)}"
        + (", with a token)" if link.token else ")")
        for link in rows
    )


@command("links pending", permission=Permission.ADMIN)
async def links_pending(ctx: Context) -> str:
    """List link claims waiting for an admin, one per line, each with its number."""
    pending = ctx.store.pending_claims(limit=50)
    if not pending:
        return "No link claims are waiting."
    now = time.time()
    lines = [describe_claim(c, now) for c in pending]
    more = ctx.store.pending_claim_count() - len(pending)
    if more > 0:
        lines.append(f"... and {more} more; settle these first.")
    return "\n".join(lines)


@command("links approve", permission=Permission.ADMIN)
async def links_approve(ctx: Context, number: int) -> str:
    """Approve a link claim: the user may then act on the account (give, credits...).

    Args:
        number: the claim's number, from links pending
    """
    found, _ = _pending(ctx, number)
    if not approve(ctx.bot, number, _who(ctx)):
        raise UserError(f"Claim #{number} was settled meanwhile.")
    ctx.audit(
        "approved",
        claim=number,
        user=f"{found.platform}:{found.user_id}",
        service=found.service,
        account=found.account,
    )
    await _tell(
        ctx.bot,
        found,
        f"{_addressed(found)}: an admin approved your {found.service} link to "
        f"{clip(found.account, 60)} (claim #{number}).",
    )
    return (
        f"Approved claim #{number}: {found.platform}:{clip(found.user_id, 40)} is linked to "
        f"{found.service} {clip(found.account, 60)}. They were told."
    )


@command("links reject", permission=Permission.ADMIN)
async def links_reject(ctx: Context, number: int) -> str:
    """Reject a link claim: the claimed link is removed and the user is told.

    Args:
        number: the claim's number, from links pending
    """
    found, link = _pending(ctx, number)
    store = ctx.store
    with store.transaction():
        if not store.settle_claim(number, "rejected", _who(ctx)):
            raise UserError(f"Claim #{number} was settled meanwhile.")
        if link.proof is Proof.CLAIMED:
            store.delete_link(found.platform, found.user_id, found.service)
    ctx.audit(
        "rejected",
        claim=number,
        user=f"{found.platform}:{found.user_id}",
        service=found.service,
        account=found.account,
    )
    await _tell(
        ctx.bot,
        found,
        f"{_addressed(found)}: an admin rejected your claim to {found.service} account "
        f"{clip(found.account, 60)} (claim #{number}), so it is not linked.",
    )
    return f"Rejected claim #{number}; the claimed link is removed and they were told."


@command("links remove", permission=Permission.ADMIN)
async def links_remove(ctx: Context, service: str, account: str) -> str:
    """Remove every chat user's link to an account, to settle who owns it.

    Args:
        service: the service, e.g. deepbot
        account: the linked account, e.g. ninja_turtle
    """
    store = ctx.store
    service = service.lower()
    holders = store.links_to_account(service, account)
    if not holders:
        raise UserError(f"Nobody links {service} account {clip(account, 60)}.")
    with store.transaction():
        for link in holders:
            store.delete_link(link.platform, link.user_id, service)
    who = ", ".join(f"{link.platform}:{clip(link.user_id, 40)} ({link.proof})" for link in holders)
    ctx.audit("removed", service=service, account=account, users=who)
    return f"Removed the {service} link to {clip(holders[0].account, 60)} of {who}."


links_alerts = subscription_command(
    "links alerts",
    PENDING_TOPIC,
    help="Turn alerts about new link claims on or off in this chat (admins)",
    permission=Permission.ADMIN,
)

COMMANDS: list[Command] = [
    links,
    links_pending,
    links_approve,
    links_reject,
    links_remove,
    links_alerts,
]
TOPICS: list[Topic] = [Topic(PENDING_TOPIC, "New link claims waiting for an admin")]


def status_line(ctx: Context) -> str | None:
    """For ``status``: how many claims wait (admins only; they are the ones who can act)."""
    if not ctx.is_admin:
        return None
    count = ctx.store.pending_claim_count()
    if not count:
        return "link claims: none waiting"
    return f"link claims: {count} waiting for an admin ({_prefix(ctx)}links pending)"
