"""Observing the primary host over the network: SSH and its gateway.

``remote`` opens SSH connections with a pinned host key and runs commands;
``probe`` asks the primary's gateway for an HTTP answer through the SSH
connection and classifies what happened (never answered / refused / slow);
``witness`` asks independent witnesses whether this standby is the one cut off;
``gwversion`` reads the OpenClaw version on each side.  Actors only report
facts; ``core.decide`` chooses.  May import ``config``, ``core`` and ``local``.
"""
