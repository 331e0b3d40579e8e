"""Clients for models that run elsewhere: one OpenAI-compatible chat client (:mod:`egt.clients.chat`).

Every part of EGT that asks a remote model — the trace teacher of ``egt traces``, the math
self-compare comparer, the RL logic checker — goes through :class:`egt.clients.chat.ChatClient`.
"""

from egt.clients.chat import ChatClient, ChatFailed, ChatReply, ServerUnreachable, image_part, user_message

__all__ = ["ChatClient", "ChatFailed", "ChatReply", "ServerUnreachable", "image_part", "user_message"]
