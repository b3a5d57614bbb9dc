"""Who may talk to Hearth: the optional API key (LLM_API_KEY), how it is sent
and compared, and the rules for non-loopback addresses: the adapter binds one
only with a key or an explicit opt-in, the engine only with a key and with TLS
or an explicit opt-in. Shared by the engine, the adapter, the desktop
window and the CLI."""

import hmac
import ipaddress
import logging

log = logging.getLogger(__name__)

AUTH_METADATA_KEY = "authorization"
BEARER = "Bearer "


def normalized_key(api_key: str | None) -> str | None:
    """The key, or None when unset or blank."""
    if api_key is None:
        return None
    api_key = api_key.strip()
    return api_key or None


def key_matches(presented: str | None, api_key: str) -> bool:
    """Constant-time comparison of a presented ``Authorization`` value with ``Bearer <key>``."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), (BEARER + api_key).encode("utf-8"))


def auth_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying the key; empty without one."""
    api_key = normalized_key(api_key)
    return ((AUTH_METADATA_KEY, BEARER + api_key),) if api_key else ()


def split_host_port(address: str) -> tuple[str, str]:
    """('host', 'port') of 'host:port' or '[v6]:port'; the host without brackets."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address.strip("[]"), ""
    return host.strip("[]"), port


def address_host(address: str) -> str:
    """The host part of a gRPC address; 'localhost' for Unix sockets, which never leave the machine."""
    if address.startswith(("unix:", "unix-abstract:")):
        return "localhost"
    for scheme in ("ipv4:", "ipv6:", "dns:///", "dns:"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
            break
    return split_host_port(address)[0]


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that can only reach this machine."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UnsafeBind(Exception):
    """Binding this address would expose Hearth without a key, and nobody said to."""


def check_bind(host: str, *, api_key: str | None, allow_remote: bool, what: str) -> None:
    """Raise UnsafeBind when ``host`` is not loopback, no key is set and remote access was not allowed."""
    if is_loopback_host(host) or normalized_key(api_key):
        return
    if allow_remote:
        log.warning("%s listens on %s without an API key: anyone who can reach it may use it", what, host or "*")
        return
    raise UnsafeBind(
        f"refusing to listen on {host or 'all interfaces'} for {what} without an API key: set LLM_API_KEY, "
        "or pass --allow-remote (LLM_ALLOW_REMOTE=true) to allow it without one"
    )


def check_engine_bind(host: str, *, api_key: str | None, tls: bool, insecure_remote: bool) -> None:
    """Raise UnsafeBind when the engine would listen beyond this machine without an API key (never allowed),
    or without TLS unless ``insecure_remote`` says so."""
    if is_loopback_host(host):
        return
    where = host or "all interfaces"
    if not normalized_key(api_key):
        raise UnsafeBind(
            f"refusing to listen on {where} for the engine without an API key: a non-loopback engine always "
            "needs one (set LLM_API_KEY)"
        )
    if tls:
        return
    if insecure_remote:
        log.warning("the engine listens on %s without TLS: its traffic and API key cross the network in clear", where)
        return
    raise UnsafeBind(
        f"refusing to listen on {where} for the engine without TLS: set LLM_TLS_CERT and LLM_TLS_KEY, "
        "or pass --insecure-remote (LLM_INSECURE_REMOTE=true) to serve it unencrypted"
    )
