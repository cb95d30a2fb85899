"""The Discord transport: every command as a prefix command and a slash command, via discord.py.

What it does, and the choices behind it:

- Prefix commands arrive as messages (this needs the privileged message-content intent, asked
  for only when ``prefix_commands`` is on; without it Discord still delivers DMs and messages
  that start by mentioning the bot, and those work too). Slash commands are rendered from the
  same declarations (:mod:`.commands`) and run through the same dispatcher checks.
- Slash commands are registered only when what would be sent changed: a hash per application
  and scope (each configured guild, or global) is kept in the store's ``meta`` table, so a
  restart does not re-register (Discord rate-limits registrations and a global update takes
  time to reach every client). ``sync_commands: false`` leaves registration to someone else.
- Admin commands carry ``default_member_permissions`` (``admin_permissions``, Manage Server by
  default) so non-admins do not see them; server owners can override that in Discord, so the
  dispatcher still checks the configured admins at run time.
- ``start`` never blocks and never raises for a Discord problem: a supervisor task logs in and
  connects in the background and retries with :func:`bot.backoff.backoff_delays`. discord.py
  resumes a dropped session by itself; when a new connection cannot be made, the client is
  closed and the supervisor starts again (re-identifying). A refused token, a refused
  privileged intent or an invalid shard set-up is final: state "failed", with the reason.
- ``api_base`` / ``gateway_url`` point discord.py at REST and gateway proxies. discord.py has no
  per-client setting for these: they are the class attributes ``discord.http.Route.BASE`` and
  ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``, so they are set **process-wide** while
  this transport runs (and restored when it stops). ``api_base`` includes the API version
  path (``https://proxy.example/api/v10``). With ``shard_count`` set, the shards connect to
  ``gateway_url`` too; resumes use the URL Discord's READY names (a gateway proxy rewrites it).

The package: :mod:`.transport` (the transport, typed commands, alerts), :mod:`.connection`
(logging in, reconnecting, endpoints), :mod:`.slash` (registration), :mod:`.commands`
(commands rendered as slash commands), :mod:`.interactions` (slash commands, autocomplete,
buttons), :mod:`.replies` (answering messages and interactions).
"""

from .library import discord
from .transport import DiscordTransport

__all__ = ["DiscordTransport", "discord"]
