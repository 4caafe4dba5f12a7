"""Telling the user: rendering notices and sending them to Telegram.

``telegram`` renders a notice from the message templates, sends it through the
Bot API with retries and a persistent outbox, and never lets a failed send fail
the check.  May import ``config`` and ``core``.
"""
