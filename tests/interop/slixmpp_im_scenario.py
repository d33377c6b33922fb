#!/usr/bin/env python3
"""Instant-messaging scenario with a real client library (slixmpp).

Against a Conclave server on 127.0.0.1:PORT (host "localhost", accounts
alice and bob with password "secret"), two clients with two resources
each (alice/one, alice/two, bob/one, bob/two), all over STARTTLS:

- subscription: alice asks, both of bob's resources see the request, bob
  approves from one of them, then bob asks and alice approves; every
  resource sees the other account's resources online;
- carbons: every resource enables carbons; a chat from alice/one to
  bob/one reaches bob/one, its sent carbon reaches alice/two and its
  received carbon reaches bob/two;
- blocking: alice/one blocks bob; alice/two gets the block push, bob sees
  alice go offline and his message bounces with the blocking error;
  after the unblock bob sees alice again and his message is delivered.

Prints one "ok: ..." line per step and exits 0; exits 1 with
"FAILED: ..." otherwise.
"""

import asyncio

from scenario import STEP_TIMEOUT, ScenarioClient, fail, login, run

BLOCKING_ERRORS = "urn:xmpp:blocking:errors"


class Client(ScenarioClient):
    def __init__(self, jid, port):
        super().__init__(jid)
        self.port = port
        for p in ("xep_0030", "xep_0199", "xep_0280", "xep_0191"):
            self.register_plugin(p)
        # Subscription requests are answered by the scenario itself
        # (None: neither accepted nor refused automatically).
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.queues = {k: asyncio.Queue() for k in (
            "message", "error", "sent", "received", "subscribe", "blocked", "unblocked")}
        self.online = {}
        self.changed = asyncio.Event()
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("message_error", lambda m: self.queues["error"].put_nowait(m))
        self.add_event_handler("carbon_sent", lambda m: self.queues["sent"].put_nowait(m))
        self.add_event_handler("carbon_received", lambda m: self.queues["received"].put_nowait(m))
        self.add_event_handler("presence_subscribe", lambda p: self.queues["subscribe"].put_nowait(p))
        self.add_event_handler("blocked", lambda iq: self.queues["blocked"].put_nowait(iq))
        self.add_event_handler("unblocked", lambda iq: self.queues["unblocked"].put_nowait(iq))
        self.add_event_handler("presence_available", self.on_available)
        self.add_event_handler("presence_unavailable", self.on_unavailable)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            self.queues["message"].put_nowait(msg)

    def on_available(self, pres):
        self.online[str(pres["from"])] = True
        self.changed.set()

    def on_unavailable(self, pres):
        self.online[str(pres["from"])] = False
        self.changed.set()

    async def wait_presence(self, full, state=True):
        async def loop():
            while self.online.get(full, False) != state:
                self.changed.clear()
                await self.changed.wait()
        try:
            await asyncio.wait_for(loop(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            fail(f"{self.boundjid} did not see {full} {'online' if state else 'offline'}")

    async def next(self, kind, what):
        try:
            return await asyncio.wait_for(self.queues[kind].get(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            fail(f"{self.boundjid}: timed out waiting for {what}")


async def connect(jid, port):
    return await login(Client(jid, port), port, jid)


async def main(port):
    a1 = await connect("alice@localhost/one", port)
    a2 = await connect("alice@localhost/two", port)
    b1 = await connect("bob@localhost/one", port)
    b2 = await connect("bob@localhost/two", port)
    print("ok: four resources logged in over STARTTLS", flush=True)

    # Subscription, each way.
    a1.send_presence_subscription(pto="bob@localhost")
    for b in (b1, b2):
        req = await b.next("subscribe", "alice's subscription request")
        if req["from"].bare != "alice@localhost":
            fail(f"unexpected request {req}")
    b1.send_presence(pto="alice@localhost", ptype="subscribed")
    b1.send_presence_subscription(pto="alice@localhost")
    for a in (a1, a2):
        req = await a.next("subscribe", "bob's subscription request")
        if req["from"].bare != "bob@localhost":
            fail(f"unexpected request {req}")
    a2.send_presence(pto="bob@localhost", ptype="subscribed")
    for c, others in ((a1, ("bob@localhost/one", "bob@localhost/two")),
                      (a2, ("bob@localhost/one", "bob@localhost/two")),
                      (b1, ("alice@localhost/one", "alice@localhost/two")),
                      (b2, ("alice@localhost/one", "alice@localhost/two"))):
        for o in others:
            await c.wait_presence(o)
    await asyncio.sleep(0.3)
    for c, other in ((a1, "bob@localhost"), (a2, "bob@localhost"),
                     (b1, "alice@localhost"), (b2, "alice@localhost")):
        sub = c.client_roster[other]["subscription"]
        if sub != "both":
            fail(f"{c.boundjid} has subscription {sub!r} to {other}, expected both")
    print("ok: mutual subscription, every resource sees the other account's two resources", flush=True)

    # Carbons.
    for c in (a1, a2, b1, b2):
        await c.plugin["xep_0280"].enable()
    a1.send_message(mto="bob@localhost/one", mbody="carbon test", mtype="chat")
    msg = await b1.next("message", "alice's chat")
    if msg["body"] != "carbon test":
        fail(f"bob/one got {msg}")
    sent = await a2.next("sent", "the sent carbon")
    if sent["carbon_sent"]["body"] != "carbon test" or str(sent["carbon_sent"]["to"]) != "bob@localhost/one":
        fail(f"unexpected sent carbon {sent}")
    received = await b2.next("received", "the received carbon")
    if received["carbon_received"]["body"] != "carbon test" or received["carbon_received"]["from"].bare != "alice@localhost":
        fail(f"unexpected received carbon {received}")
    print("ok: carbons: sent copy on alice/two, received copy on bob/two", flush=True)

    # Blocking.
    for a in (a1, a2):
        await a.plugin["xep_0191"].get_blocked()
    await a1.plugin["xep_0191"].block("bob@localhost")
    push = await a2.next("blocked", "the block push")
    pushed = {i.get("jid") for i in push.xml.iter("{urn:xmpp:blocking}item")}
    if pushed != {"bob@localhost"}:
        fail(f"unexpected block push {push}")
    for b in (b1, b2):
        await b.wait_presence("alice@localhost/one", False)
        await b.wait_presence("alice@localhost/two", False)
    b1.send_message(mto="alice@localhost", mbody="can you hear me?", mtype="chat")
    err = await b1.next("error", "the blocked bounce")
    if err["error"]["condition"] != "not-acceptable" or err.xml.find(
            "{jabber:client}error/{%s}blocked" % BLOCKING_ERRORS) is None:
        fail(f"unexpected bounce {err}")
    print("ok: blocking: push to alice/two, bob sees alice offline, his message bounces", flush=True)

    await a1.plugin["xep_0191"].unblock("bob@localhost")
    await a2.next("unblocked", "the unblock push")
    await b1.wait_presence("alice@localhost/one", True)
    b1.send_message(mto="alice@localhost/one", mbody="hello again", mtype="chat")
    msg = await a1.next("message", "bob's message after the unblock")
    if msg["body"] != "hello again":
        fail(f"alice/one got {msg}")
    print("ok: unblocking restores presence and messages", flush=True)

    for c in (a1, a2, b1, b2):
        c.disconnect()
    await asyncio.sleep(0.3)
    print("ok: scenario complete", flush=True)


if __name__ == "__main__":
    run(main, 150)
