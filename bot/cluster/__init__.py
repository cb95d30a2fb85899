"""The same bot as a cluster on RabbitMQ: gateway processes and worker processes.

Why it is shaped like this (see ``shared/scale-out-notes.md`` for the anchors):

- **Gateways** (``bot run --role gateway``) hold the platform connections. Each incoming
  message becomes a JSON envelope published to one of ``partitions`` ingress queues, chosen by
  a hash of its chat, so one chat's commands always queue in one place, in order.
- **Workers** (``--role worker``) consume every ingress queue as *single active consumers*:
  one worker at a time takes a partition, the others stand by and take over when it dies (the
  broker requeues what it had not acknowledged). A command is acknowledged only after its
  replies are published, and its id is recorded as answered, so a redelivered command is
  answered once.
- **Owners.** A plugin keeps one outside connection (a websocket, ChatWars' reply queue,
  presence pings): it runs on exactly one worker, the active consumer of its own queue
  ``<name>.plugin.<plugin>``. Other workers forward that plugin's commands there.
- **Egress**: replies go straight to the gateway that received the command; alerts go to a
  queue per platform that the gateways running that platform share.

With ``--role all`` and no ``bot.cluster.amqp_url`` none of this is imported: the bot is one
process, as before.
"""

from __future__ import annotations

__all__ = ["ClusterError"]


class ClusterError(RuntimeError):
    """The cluster cannot run: no broker configured or reachable, or a wrong role."""
