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

import argparse
import asyncio
import hashlib
import logging
import ssl
import sys

import slixmpp

STEP_TIMEOUT = 30
SIZE = 1024 * 1024


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid):
        super().__init__(jid, "secret")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0030")
        # The receiver accepts the offered stream (a real client would ask).
        self.register_plugin("xep_0065", {"auto_accept": True})
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.failed = loop.create_future()
        self.closed = loop.create_future()
        self.tls_done = False
        self.received = bytearray()
        self.add_event_handler("tls_success", lambda _e: setattr(self, "tls_done", True))
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler(
            "failed_auth", lambda _e: self.failed.done() or self.failed.set_result(True))
        self.add_event_handler("socks5_data", self.received.extend)
        self.add_event_handler(
            "socks5_closed", lambda _e: self.closed.done() or self.closed.set_result(True))

    async def on_start(self, _event):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)


def fail(message):
    print(f"FAILED: {message}", flush=True)
    sys.exit(1)


async def login(jid, port):
    c = Client(jid)
    c.connect("127.0.0.1", port)
    done, _ = await asyncio.wait([c.started, c.failed], timeout=STEP_TIMEOUT,
                                 return_when=asyncio.FIRST_COMPLETED)
    if c.failed in done or not done:
        fail(f"{jid} could not log in")
    if not c.tls_done:
        fail(f"{jid} logged in without STARTTLS")
    print(f"ok: {jid} logged in over STARTTLS", flush=True)
    return c


async def main(port):
    alice = await login("alice@localhost/sender", port)
    bob = await login("bob@localhost/receiver", port)

    proxies = await alice.plugin["xep_0065"].discover_proxies(timeout=STEP_TIMEOUT)
    if "proxy.localhost" not in {str(j) for j in proxies}:
        fail(f"the proxy was not discovered: {proxies}")
    host, port_ = proxies[next(iter(proxies))]
    print(f"ok: proxy discovered with its streamhost {host}:{port_}", flush=True)

    try:
        sock = await asyncio.wait_for(
            alice.plugin["xep_0065"].handshake(bob.boundjid, timeout=STEP_TIMEOUT), STEP_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - any failure of the plugin fails the step
        fail(f"the bytestream could not be set up: {e!r}")
    if sock is None:
        fail("the bytestream could not be set up")
    print("ok: bytestream negotiated and activated through the proxy", flush=True)

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
    print(f"ok: {SIZE} bytes received intact", flush=True)

    # The plugin's protocol object has no close(); its transport does.
    sock.transport.close()
    try:
        await asyncio.wait_for(bob.closed, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        fail("bob's side of the stream was not closed after alice closed hers")
    print("ok: the stream closed on both sides", flush=True)

    alice.disconnect()
    bob.disconnect()
    await asyncio.sleep(0.3)
    print("ok: scenario complete", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)
    try:
        asyncio.run(asyncio.wait_for(main(args.port), 120))
    except asyncio.TimeoutError:
        fail("scenario timed out")
