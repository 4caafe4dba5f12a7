"""A small client of etcd's v3 JSON gateway (``POST /v3/...``) over ``requests``.

The same path as Patroni's etcd3 module: HTTP/JSON instead of a gRPC client, keys and
values base64, int64 fields as strings.  Endpoints are tried in order, starting with
the last one that answered; every request has a timeout.

Errors are typed, so callers can tell the cases apart that matter for leadership:

- :class:`Unreachable`: no endpoint accepted a connection (etcd down, or we are cut off);
- :class:`NoQuorum`: a member answered, but could not serve a linearizable request
  (it timed out, or said "no leader" / "request timed out"): the cluster lost quorum
  or this member is partitioned from it;
- :class:`EtcdRefused`: etcd answered with an error that retrying elsewhere will not
  fix (wrong password, permission denied, bad request).

A linearizable read (the default for :meth:`EtcdClient.get`) goes through the Raft
leader, so it succeeding is how to tell that a quorum is reachable.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

Mask = Callable[[str], str]

# gRPC codes etcd uses for "cannot serve this now" (Unavailable, DeadlineExceeded)
_UNAVAILABLE_CODES = frozenset({4, 14})
_NO_QUORUM_WORDS = (
    "no leader",
    "timed out",
    "timeout",
    "deadline exceeded",
    "leader changed",
    "not capable",
)
_BAD_TOKEN_WORDS = ("invalid auth token", "user name is empty")


class EtcdError(Exception):
    """Any failure to talk to etcd (the message is masked and one line)."""


class Unreachable(EtcdError):
    """No endpoint accepted a connection."""


class NoQuorum(EtcdError):
    """A member answered but could not serve a linearizable request."""


class EtcdRefused(EtcdError):
    """etcd answered with an error that another endpoint would not fix."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    create_revision: int
    mod_revision: int
    lease: int  # 0: no lease


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def unb64(text: str) -> str:
    return base64.b64decode(text).decode(errors="replace")


def parse_kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=unb64(raw.get("key", "")),
        value=unb64(raw.get("value", "")),
        create_revision=int(raw.get("create_revision", 0)),
        mod_revision=int(raw.get("mod_revision", 0)),
        lease=int(raw.get("lease", 0)),
    )


class EtcdClient:
    """A client of one etcd cluster: ``endpoints`` are ``http(s)://host:port`` URLs."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 2.0,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        user: str | None = None,
        password: str | None = None,
        mask: Mask = str,
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoints")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.mask = mask
        self.user, self.password = user, password
        self._token: str | None = None
        self._preferred = 0
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy from the environment
        self.session.verify = ca_file if ca_file else True
        if cert_file:
            self.session.cert = (cert_file, key_file) if key_file else cert_file

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ transport

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>`` on the first endpoint that can serve it."""
        if self.user and self._token is None:
            self._authenticate()
        try:
            return self._call(path, body)
        except EtcdRefused as exc:
            if not (self.user and any(w in str(exc) for w in _BAD_TOKEN_WORDS)):
                raise
        self._authenticate()  # an expired token: once more with a new one
        return self._call(path, body)

    def _authenticate(self) -> None:
        self._token = None
        body = {"name": self.user or "", "password": self.password or ""}
        self._token = str(self._call("auth/authenticate", body).get("token", "")) or None

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        quorum_lost = False
        n = len(self.endpoints)
        for i in range(n):
            index = (self._preferred + i) % n
            endpoint = self.endpoints[index]
            try:
                answer = self._post(endpoint, path, body)
            except Unreachable as exc:
                problems.append(str(exc))
                continue
            except NoQuorum as exc:
                problems.append(str(exc))
                quorum_lost = True
                continue
            self._preferred = index
            return answer
        kind = NoQuorum if quorum_lost else Unreachable
        what = "no etcd quorum" if quorum_lost else "no etcd endpoint reachable"
        raise kind(self.mask(f"{what}: " + "; ".join(problems)))

    def _post(self, endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": self._token} if self._token else {}
        url = f"{endpoint}/v3/{path}"
        try:
            response = self.session.post(url, json=body, headers=headers, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout:
            raise Unreachable(f"{endpoint}: connect timed out after {self.timeout:g}s") from None
        except requests.exceptions.SSLError as exc:
            raise EtcdRefused(self.mask(f"{endpoint}: TLS: {_first_line(exc)}")) from None
        except requests.exceptions.ConnectionError as exc:
            raise Unreachable(self.mask(f"{endpoint}: {_reason(exc)}")) from None
        except requests.exceptions.Timeout:  # connected, then no answer: it cannot serve
            raise NoQuorum(f"{endpoint}: no answer within {self.timeout:g}s") from None
        except requests.exceptions.RequestException as exc:
            raise Unreachable(self.mask(f"{endpoint}: {_first_line(exc)}")) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise EtcdRefused(f"{endpoint}: HTTP {response.status_code}, not a JSON object")
        if response.status_code >= 400 or "error" in data:
            message = str(data.get("message") or data.get("error") or response.status_code)
            text = self.mask(f"{endpoint}: {message}")
            if data.get("code") in _UNAVAILABLE_CODES or any(
                w in message.lower() for w in _NO_QUORUM_WORDS
            ):
                raise NoQuorum(text)
            raise EtcdRefused(text)
        return data

    # ------------------------------------------------------------------ KV

    def get(self, key: str, *, serializable: bool = False) -> KeyValue | None:
        """The key's value (a linearizable read unless ``serializable``), or None."""
        body: dict[str, Any] = {"key": b64(key)}
        if serializable:
            body["serializable"] = True
        kvs = self.call("kv/range", body).get("kvs") or []
        return parse_kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> list[KeyValue]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = {"key": b64(prefix), "range_end": b64(end)}
        return [parse_kv(raw) for raw in self.call("kv/range", body).get("kvs") or []]

    def put(self, key: str, value: str, *, lease: int = 0) -> None:
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        self.call("kv/put", body)

    def txn(
        self,
        compare: list[dict[str, Any]],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] | None = None,
    ) -> tuple[bool, list[dict[str, Any]]]:
        """One transaction: (whether every comparison held, the responses of its branch)."""
        body = {"compare": compare, "success": success, "failure": failure or []}
        answer = self.call("kv/txn", body)
        return bool(answer.get("succeeded", False)), list(answer.get("responses") or [])

    # ------------------------------------------------------------------ leases

    def lease_grant(self, ttl: int) -> int:
        answer = self.call("lease/grant", {"TTL": ttl, "ID": 0})
        lease = int(answer.get("ID", 0))
        if not lease:
            raise EtcdRefused(f"lease grant returned no lease: {answer.get('error', '')}")
        return lease

    def lease_keepalive(self, lease: int) -> int:
        """Refresh ``lease``; its TTL in seconds afterwards (0: the lease is gone)."""
        answer = self.call("lease/keepalive", {"ID": str(lease)})
        result = answer.get("result", answer)
        return int(result.get("TTL", 0)) if isinstance(result, dict) else 0

    def lease_ttl(self, lease: int) -> int:
        """Seconds left on ``lease`` (-1: expired or unknown)."""
        return int(self.call("lease/timetolive", {"ID": str(lease)}).get("TTL", -1))

    def lease_revoke(self, lease: int) -> bool:
        """Revoke ``lease`` (and delete its keys); False when it was gone already."""
        try:
            self.call("lease/revoke", {"ID": str(lease)})
        except EtcdRefused as exc:
            if "not found" in str(exc):
                return False
            raise
        return True

    def status(self, endpoint: str) -> dict[str, Any]:
        """One member's status (its version, its leader's id), asked of that member only."""
        return self._post(endpoint.rstrip("/"), "maintenance/status", {})


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, one line ("Connection refused")."""
    for marker in ("Connection refused", "No route to host", "Network is unreachable"):
        if marker in str(exc):
            return marker.lower()
    text = _first_line(exc)
    with contextlib.suppress(Exception):
        cause = exc.args[0].reason  # urllib3's MaxRetryError
        return _first_line(cause)
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
