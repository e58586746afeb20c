"""DhanHQ v2 as a second market-data provider: wire codec, subscription requests, scrip master.

Codec only for now: :mod:`aion.dhan.wire` turns Dhan's binary market-feed messages into the
same :data:`aion.kite.wire.TICK_DTYPE` rows the Kite path produces (and back, for replay and
tests), :mod:`aion.dhan.requests` builds the JSON subscription messages and
:mod:`aion.dhan.master` maps Dhan's scrip master onto aion's
:class:`aion.instruments.master.Instrument` rows. The feed client, replay server and session
builder do not speak Dhan yet.
"""
