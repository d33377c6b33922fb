#!/usr/bin/env python3
"""File transfer through the server's SOCKS5 bytestreams proxy (XEP-0065)
with a real client library (slixmpp's xep_0065 plugin).

Against a Conclave server on 127.0.0.1:PORT (host "localhost", accounts
alice and bob with password "secret"), both over STARTTLS: alice's client
discovers the proxy through the server's disco items, offers it to bob's
client as the streamhost, bob's client connects to it and says so, alice's
connects and activates the stream, then alice sends 1 MB that bob must
receive byte for byte before alice closes the stream.

Prints one "ok: ..." line per step and exits 0; exits 1 with
"FAILED: ..." otherwise.
"""

import asyncio
import hashlib

from scenario import STEP_TIMEOUT, ScenarioClient, fail, login, ok, run

SIZE = 1024 * 1024


class Client(ScenarioClient):
    fetch_roster = False

    def __init__(self, jid):
        super().__init__(jid)
        self.register_plugin("xep_0030")
        # The receiver accepts the offered stream (a real client would ask).
        self.register_plugin("xep_0065", {"auto_accept": True})
        self.closed = asyncio.get_running_loop().create_future()
        self.received = bytearray()
        self.add_event_handler("socks5_data", self.received.extend)
        self.add_event_handler(
            "socks5_closed", lambda _e: self.closed.done() or self.closed.set_result(True))


async def connect(jid, port):
    c = await login(Client(jid), port, jid)
    ok(f"{jid} logged in over STARTTLS")
    return c


async def main(port):
    alice = await connect("alice@localhost/sender", port)
    bob = await connect("bob@localhost/receiver", port)

    proxies = await alice.plugin["xep_0065"].discover_proxies(timeout=STEP_TIMEOUT)
    if "proxy.localhost" not in {str(j) for j in proxies}:
        fail(f"the proxy was not discovered: {proxies}")
    host, port_ = proxies[next(iter(proxies))]
    ok(f"proxy discovered with its streamhost {host}:{port_}")

    try:
        sock = await asyncio.wait_for(
            alice.plugin["xep_0065"].handshake(bob.boundjid, timeout=STEP_TIMEOUT), STEP_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - any failure of the plugin fails the step
        fail(f"the bytestream could not be set up: {e!r}")
    if sock is None:
        fail("the bytestream could not be set up")
    ok("bytestream negotiated and activated through the proxy")

    data = bytes((i * 2654435761 >> 13) & 0xFF for i in range(SIZE))
    for start in range(0, SIZE, 16 * 1024):
        await sock.write(data[start:start + 16 * 1024])

    async def all_received():
        while len(bob.received) < SIZE:
            await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(all_received(), STEP_TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"bob received {len(bob.received)} of {SIZE} bytes")
    if hashlib.sha1(bob.received).digest() != hashlib.sha1(data).digest():
        fail("the received file differs from the sent one")
    ok(f"{SIZE} bytes received intact")

    # The plugin's protocol object has no close(); its transport does.
    sock.transport.close()
    try:
        await asyncio.wait_for(bob.closed, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        fail("bob's side of the stream was not closed after alice closed hers")
    ok("the stream closed on both sides")

    alice.disconnect()
    bob.disconnect()
    await asyncio.sleep(0.3)
    ok("scenario complete")


if __name__ == "__main__":
    run(main, 120)
