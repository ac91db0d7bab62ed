"""The names a local server answers (``relay.local.servers.TrustedHosts``): its loopback
names with its port, the public URL it was given, and nothing else."""

from __future__ import annotations

import pytest

from relay.local.servers import TrustedHosts


def scope(*hosts: str) -> dict[str, object]:
    return {"type": "http", "headers": [(b"host", h.encode()) for h in hosts] + [(b"accept", b"*/*")]}


def test_the_loopback_names_with_the_servers_port_are_answered():
    trusted = TrustedHosts(8787)
    for host in ("127.0.0.1:8787", "localhost:8787", "LocalHost:8787", "[::1]:8787"):
        assert trusted.admits(scope(host)), host
    # another port, no port, another name, a name that only ends like ours: refused
    for host in ("127.0.0.1:8788", "127.0.0.1", "localhost", "evil.example:8787", "evil.localhost:8787", "127.0.0.1:8787.evil"):
        assert not trusted.admits(scope(host)), host


def test_no_host_or_two_hosts_are_refused():
    trusted = TrustedHosts(8787)
    assert not trusted.admits(scope())
    assert not trusted.admits(scope("127.0.0.1:8787", "evil.example:8787"))


def test_port_80_is_also_answered_without_its_port():
    assert TrustedHosts(80).admits(scope("localhost")) and TrustedHosts(80).admits(scope("localhost:80"))


def test_a_public_url_adds_its_host_with_and_without_the_default_port():
    trusted = TrustedHosts(8787, ["https://Relay.Example.internal", "http://tunnel.example:8443/base"])
    for host in ("relay.example.internal", "relay.example.internal:443", "tunnel.example:8443", "127.0.0.1:8787"):
        assert trusted.admits(scope(host)), host
    for host in ("tunnel.example", "relay.example.internal:8787", "example.internal"):
        assert not trusted.admits(scope(host)), host


def test_a_public_url_without_a_host_is_refused():
    with pytest.raises(ValueError, match="no host"):
        TrustedHosts(8787, ["/relative/path"])
