"""The wording of ChatWars replies: profiles, stock, amounts and ledger lines.

Kept apart from the command handlers so the sentences can be read (and changed) in one place,
and so every value that came from the game is cleaned before it reaches a chat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .alerts import clean

if TYPE_CHECKING:
    from bot.store import LedgerEntry

    from .models import Craftbook, Gear, GuildInfo, Profile, Stock

GOLD_PER_POUCH = 100
#: stock lines shown before "+N more"
MAX_STOCK_LINES = 40
#: recipes listed per kind before "+N more"
MAX_RECIPES = 30

#: what each permission lets the bot do, for the question asking the player to allow it
OPERATIONS = {
    "GetUserProfile": "read your profile",
    "GetStock": "read your stock",
    "GetGearInfo": "read your gear",
    "TradeTerminal": "trade on the exchange for you",
    "GuildStock": "read your guild and its stock",
    "ViewCraftbook": "read your craftbook",
}


def pouches(n: int) -> str:
    return f"{n} gold pouch" if n == 1 else f"{n:,} gold pouches"


def gold(n: int) -> str:
    return f"{n:,} gold"


def operation_text(operation: str) -> str:
    known = OPERATIONS.get(operation)
    if known:
        return known
    return "use " + "".join(c for c in operation if c.isalnum())[:40]


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:g} seconds"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"


def describe_profile(profile: Profile) -> str:
    name = clean(profile.user_name) or "Your character"
    if profile.guild_tag:  # as the game writes it: castle, guild emoji, [TAG], name
        name = f"{clean(profile.guild_emoji or '', 4)}[{clean(profile.guild_tag, 12)}]{name}"
    head = f"{clean(profile.castle, 4)}{name}".strip()
    if profile.character_class:
        head += f" {clean(profile.character_class, 4)}"
    if profile.level is not None:
        head += f", level {profile.level}"
    if profile.guild:
        head += f", guild {clean(profile.guild)}"
    lines = [head]
    fight = []
    if profile.attack is not None:
        fight.append(f"⚔{profile.attack}")
    if profile.defense is not None:
        fight.append(f"🛡{profile.defense}")
    if profile.exp is not None:
        fight.append(f"exp {profile.exp:,}")
    if profile.hp is not None:
        fight.append(f"❤️{profile.hp}" + (f"/{profile.max_hp}" if profile.max_hp else ""))
    if fight:
        lines.append(" ".join(fight))
    purse = []
    if profile.gold is not None:
        purse.append(gold(profile.gold))
    if profile.pouches is not None:
        purse.append(pouches(profile.pouches))
    if profile.mana is not None:
        purse.append(f"{profile.mana} mana")
    if profile.stamina is not None:
        purse.append(f"{profile.stamina} stamina")
    if purse:
        lines.append(", ".join(purse))
    return "\n".join(lines)


def describe_stock(stock: Stock) -> str:
    if not stock.items:
        return "Your stock is empty."
    items = sorted(stock.items.items(), key=lambda kv: kv[0].casefold())
    lines = [f"Your stock ({len(items)} kinds):"]
    lines += [f"{clean(name)}: {qty:,}" for name, qty in items[:MAX_STOCK_LINES]]
    if len(items) > MAX_STOCK_LINES:
        lines.append(f"+{len(items) - MAX_STOCK_LINES} more")
    return "\n".join(lines)


def describe_entry(entry: LedgerEntry, who: str | None = None) -> str:
    """One ledger row on one line: id, when, what, to or from whom, status."""
    when = datetime.fromtimestamp(entry.created, UTC).strftime("%Y-%m-%d %H:%M")
    party = who or f"Telegram {entry.account}"
    if entry.kind == "buy":  # an exchange order: the amount is the most gold it may spend
        what = clean(entry.message or "", 60)
        line = (
            f"{entry.transaction_id[:8]} {when} buy by {party}: {what} (at most "
            f"{gold(entry.amount)}): {entry.status}"
        )
    else:
        direction = "from" if entry.kind == "payment" else "to"
        line = (
            f"{entry.transaction_id[:8]} {when} {entry.kind} {pouches(entry.amount)} "
            f"{direction} {party}: {entry.status}"
        )
    if entry.result and entry.result != "Ok":
        line += f" ({entry.result})"
    if entry.fee is not None:
        line += f", fee {gold(entry.fee)}"
    if entry.debit is not None and entry.kind == "payment":
        line += f", credited {gold(entry.debit)}"
    return line


# --- beyond the v0.5 document ----------------------------------------------------------------


def describe_guild(guild: GuildInfo) -> str:
    tag = f"[{clean(guild.tag, 12)}] " if guild.tag else ""
    head = f"{clean(guild.castle, 4)}{tag}{clean(guild.name) or 'Your guild'}".strip()
    facts = []
    if guild.level is not None:
        facts.append(f"level {guild.level}")
    if guild.glory is not None:
        facts.append(f"🎖{guild.glory:,} glory")
    if guild.members is not None:
        facts.append(f"{guild.members} members")
    if guild.stock_size is not None and guild.stock_limit is not None:
        facts.append(f"stock {guild.stock_size:,}/{guild.stock_limit:,}")
    lines = [head + (": " + ", ".join(facts) if facts else "")]
    items = sorted(guild.stock.items(), key=lambda kv: kv[0].casefold())
    lines += [f"{clean(name)}: {qty:,}" for name, qty in items[:MAX_STOCK_LINES]]
    if len(items) > MAX_STOCK_LINES:
        lines.append(f"+{len(items) - MAX_STOCK_LINES} more")
    return "\n".join(lines)


def describe_gear(gear: Gear) -> str:
    if not gear.slots:
        return "You wear nothing."
    lines = ["Your gear:"]
    for slot, item in list(gear.slots.items())[:MAX_STOCK_LINES]:
        stats = []
        if item.attack:
            stats.append(f"⚔{item.attack}")
        if item.defense:
            stats.append(f"🛡{item.defense}")
        if item.quality:
            stats.append(f"quality {clean(item.quality, 8)}")
        if item.condition:
            stats.append(clean(item.condition, 16))
        extra = f" ({', '.join(stats)})" if stats else ""
        lines.append(f"{clean(slot, 16)}: {clean(item.name)}{extra}")
    if gear.ammo:
        ammo = ", ".join(f"{clean(k, 20)} {v:,}" for k, v in list(gear.ammo.items())[:10])
        lines.append(f"Ammo: {ammo}")
    return "\n".join(lines)


def describe_craftbook(book: Craftbook) -> str:
    if not book.alchemy and not book.craft:
        return "Your craftbook is empty."
    lines = []
    for title, recipes in (("Alchemy", book.alchemy), ("Craft", book.craft)):
        if not recipes:
            continue
        shown = ", ".join(
            clean(r.name) + (f" ({gold(r.price)})" if r.price is not None else "")
            for r in recipes[:MAX_RECIPES]
        )
        more = f", +{len(recipes) - MAX_RECIPES} more" if len(recipes) > MAX_RECIPES else ""
        lines.append(f"{title} ({len(recipes)}): {shown}{more}")
    return "\n".join(lines)
