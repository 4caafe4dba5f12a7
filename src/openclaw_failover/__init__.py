"""openclaw-failover (ocf): keep an OpenClaw gateway alive on a standby host."""

__version__ = "0.1.0"
