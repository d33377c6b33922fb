"""What every slixmpp scenario shares: a client that logs in over STARTTLS
(certificate checks off, as the test servers' certificates are
self-signed), failing with one line, and the command line (--port,
--debug) with an overall time limit.

A scenario prints one "ok: ..." line per step and exits 0, or prints
"FAILED: ..." and exits 1.
"""

import argparse
import asyncio
import logging
import ssl
import sys

import slixmpp

STEP_TIMEOUT = 20


def fail(message):
    print(f"FAILED: {message}", flush=True)
    sys.exit(1)


def ok(message):
    print(f"ok: {message}", flush=True)


class ScenarioClient(slixmpp.ClientXMPP):
    """A client that knows when its session started, whether its
    authentication failed and whether it went through STARTTLS. Subclasses
    register their plugins and handlers; `on_start` fetches the roster when
    `fetch_roster` is set, then sends initial presence."""

    fetch_roster = True

    def __init__(self, jid, password="secret", mech=None):
        super().__init__(jid, password, sasl_mech=mech)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.failed = loop.create_future()
        self.tls_done = False
        self.add_event_handler("tls_success", lambda _e: setattr(self, "tls_done", True))
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler(
            "failed_auth", lambda _e: self.failed.done() or self.failed.set_result(True))

    async def on_start(self, _event):
        if self.fetch_roster:
            await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)


async def login(client, port, what=None):
    """Connects `client` to 127.0.0.1:`port` and waits for its session;
    fails unless it authenticated over STARTTLS."""
    what = what or str(client.boundjid)
    client.connect("127.0.0.1", port)
    done, _ = await asyncio.wait([client.started, client.failed], timeout=STEP_TIMEOUT,
                                 return_when=asyncio.FIRST_COMPLETED)
    if client.failed in done or not done:
        fail(f"{what} could not log in")
    if not client.tls_done:
        fail(f"{what} logged in without STARTTLS")
    return client


def run(main, seconds):
    """Runs `main(port)` with the command line's port, within `seconds`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)
    try:
        asyncio.run(asyncio.wait_for(main(args.port), seconds))
    except asyncio.TimeoutError:
        fail("scenario timed out")
