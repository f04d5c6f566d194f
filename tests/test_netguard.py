import pytest

from akhbar.transforms.netguard import BlockedAddress, HostGuard, is_public, literal_ip


def resolver(table):
    calls = []

    def resolve(host, port):
        calls.append(host)
        return table[host]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize("addr, public", [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("::1", False), ("fe80::1", False), ("fc00::1", False),
    ("0.0.0.0", False), ("100.64.0.1", False), ("::ffff:127.0.0.1", False), ("224.0.0.1", False),
])
def test_is_public(addr, public):
    assert is_public(addr) is public


def test_guard_blocks_host_resolving_to_private_address_without_contacting_it():
    res = resolver({"news.example": ["93.184.216.34"], "intranet.example": ["10.0.0.5"],
                    "rebind.example": ["93.184.216.34", "169.254.169.254"]})
    g = HostGuard(resolver=res)
    g.check("news.example", 443)
    with pytest.raises(BlockedAddress, match="10.0.0.5"):
        g.check("intranet.example", 80)
    with pytest.raises(BlockedAddress, match="169.254.169.254"):
        g.check("rebind.example", 80)


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "[::1]", "localhost", "api.localhost"])
def test_guard_blocks_literal_private_addresses_and_localhost(host):
    g = HostGuard(resolver=resolver({}))
    with pytest.raises(BlockedAddress):
        g.check(host, 80)


def test_allow_private_hosts_skips_resolution():
    res = resolver({})
    HostGuard(allow_private=True, resolver=res).check("10.0.0.5", 80)
    assert res.calls == []


def test_every_connection_resolves_again_so_rebinding_is_caught():
    answers = iter([["93.184.216.34"], ["169.254.169.254"]])
    connected = []
    g = HostGuard(resolver=lambda h, p: next(answers), connector=lambda addr, *a, **k: connected.append(addr))
    g.connect("news.example", 80, 1)
    with pytest.raises(BlockedAddress):
        g.connect("news.example", 80, 1)
    assert connected == [("93.184.216.34", 80)]  # connected to the address it checked, once


@pytest.mark.parametrize("host, addr", [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe"), ("[::1]", "::1"),
    ("2852039166", "169.254.169.254"), ("017700000001", "127.0.0.1"), ("news.example", None), ("1.2.3.example", None),
])
def test_literal_ip_spellings(host, addr):
    assert literal_ip(host) == addr


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.1", "[::ffff:127.0.0.1]", "[::ffff:a9fe:a9fe]",
                                  "2852039166", "[2002:a9fe:a9fe::1]", "0.0.0.0", "[fe80::1%25eth0]", "240.0.0.1"])
def test_odd_spellings_of_private_addresses_are_refused_without_resolving(host):
    res = resolver({})
    with pytest.raises(BlockedAddress):
        HostGuard(resolver=res).connect(host, 80, 1)
    assert res.calls == []


def test_a_lookup_given_a_time_limit_returns_its_answer_raises_its_error_or_gives_up():
    import socket
    import threading
    import time

    from akhbar.transforms.netguard import LookupThreads, ResolveTimeout

    release = threading.Event()

    def resolve(host, port):
        if host == "slow.example":
            release.wait(10)
        if host == "nowhere.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return ["93.184.216.34"]

    g = HostGuard(resolver=resolve, lookups=LookupThreads(size=1))
    try:
        assert g.addresses("news.example", 80, resolve_within=5) == ["93.184.216.34"]
        with pytest.raises(socket.gaierror):
            g.addresses("nowhere.example", 80, resolve_within=5)
        t0 = time.monotonic()
        with pytest.raises(ResolveTimeout, match="slow.example"):
            g.addresses("slow.example", 80, resolve_within=0.3)
        assert time.monotonic() - t0 < 1.5
    finally:
        release.set()
    assert g.addresses("slow.example", 80, resolve_within=5) == ["93.184.216.34"]
