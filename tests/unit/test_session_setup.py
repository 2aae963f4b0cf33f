"""SessionSetups: a new session's variables reach its owner through Redis, once."""

from __future__ import annotations

import fakeredis

from core.session_setup import SessionSetup, SessionSetups


def test_the_owner_takes_the_setup_once() -> None:
    setups = SessionSetups(fakeredis.FakeRedis())
    setups.put("s1", SessionSetup(variables={"db_password": "hunter2"}, packages=["tabulate"]))
    assert setups.take("s1") == SessionSetup(variables={"db_password": "hunter2"}, packages=["tabulate"])
    assert setups.take("s1") is None


def test_a_discarded_setup_is_gone_and_every_setup_expires() -> None:
    client = fakeredis.FakeRedis()
    setups = SessionSetups(client, ttl_s=30)
    setups.put("s1", SessionSetup(variables={"x": 1}))
    assert 0 < int(client.ttl("penny:session:s1:setup")) <= 30
    setups.discard("s1")
    assert setups.take("s1") is None
