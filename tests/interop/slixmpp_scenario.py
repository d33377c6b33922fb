#!/usr/bin/env python3
"""Interoperability scenario with a real client library (slixmpp).

Against a Conclave server on 127.0.0.1:PORT (host "localhost", accounts
alice and bob with password "secret"): both log in with SCRAM over
STARTTLS (certificate checks off), subscribe to each other and see each
other online, exchange messages; bob goes offline, alice sends him a
message, and bob receives it, with a delay stamp, on his next login.

Prints one "ok: ..." line per step and exits 0; exits 1 with
"FAILED: ..." otherwise.
"""

import asyncio

from scenario import STEP_TIMEOUT, ScenarioClient, fail, login, ok, run


class Client(ScenarioClient):
    def __init__(self, jid, mech):
        super().__init__(jid, mech=mech)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0203")
        self.messages = asyncio.Queue()
        self.online = {}
        self.online_changed = asyncio.Event()
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_available", self.on_available)
        self.add_event_handler("presence_unavailable", self.on_unavailable)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            self.messages.put_nowait(msg)

    def on_available(self, pres):
        self.online[str(pres["from"].bare)] = True
        self.online_changed.set()

    def on_unavailable(self, pres):
        self.online[str(pres["from"].bare)] = False
        self.online_changed.set()

    async def wait_online(self, bare, state=True):
        async def loop():
            while self.online.get(bare, False) != state:
                self.online_changed.clear()
                await self.online_changed.wait()
        await asyncio.wait_for(loop(), STEP_TIMEOUT)


async def connect(jid, mech, port):
    c = await login(Client(jid, mech), port, jid)
    ok(f"{jid} logged in with {mech} over STARTTLS")
    return c


async def next_message(c, what):
    try:
        return await asyncio.wait_for(c.messages.get(), STEP_TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"timed out waiting for {what}")


async def main(port):
    alice = await connect("alice@localhost", "SCRAM-SHA-256", port)
    bob = await connect("bob@localhost", "SCRAM-SHA-1", port)

    # Mutual subscription (slixmpp accepts and subscribes back by default).
    alice.send_presence_subscription(pto="bob@localhost")
    try:
        await alice.wait_online("bob@localhost")
        await bob.wait_online("alice@localhost")
    except asyncio.TimeoutError:
        fail("alice and bob do not see each other online after subscribing")
    sub_a = alice.client_roster["bob@localhost"]["subscription"]
    sub_b = bob.client_roster["alice@localhost"]["subscription"]
    if sub_a != "both" or sub_b != "both":
        fail(f"subscriptions are {sub_a!r} and {sub_b!r}, expected both")
    print("ok: mutual subscription, both see each other online", flush=True)

    alice.send_message(mto="bob@localhost", mbody="hello bob", mtype="chat")
    msg = await next_message(bob, "alice's message")
    if msg["body"] != "hello bob" or msg["from"].bare != "alice@localhost":
        fail(f"bob got an unexpected message: {msg}")
    bob.send_message(mto=msg["from"], mbody="hello alice", mtype="chat")
    msg = await next_message(alice, "bob's reply")
    if msg["body"] != "hello alice":
        fail(f"alice got an unexpected message: {msg}")
    print("ok: messages exchanged", flush=True)

    bob.disconnect()
    try:
        await alice.wait_online("bob@localhost", state=False)
    except asyncio.TimeoutError:
        fail("alice did not see bob go offline")
    print("ok: bob offline", flush=True)

    alice.send_message(mto="bob@localhost", mbody="while you were away", mtype="chat")
    await asyncio.sleep(0.5)
    bob2 = await connect("bob@localhost", "SCRAM-SHA-256", port)
    msg = await next_message(bob2, "the offline message")
    if msg["body"] != "while you were away":
        fail(f"bob got an unexpected offline message: {msg}")
    if not msg["delay"]["stamp"]:
        fail("the offline message has no delay stamp")
    print("ok: offline message delivered at next login with a delay stamp", flush=True)

    alice.disconnect()
    bob2.disconnect()
    await asyncio.sleep(0.3)
    print("ok: scenario complete", flush=True)


if __name__ == "__main__":
    run(main, 120)
