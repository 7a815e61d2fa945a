"""A minimal faust app for the broker test: uppercase every record from one topic to another.

Run as a real worker: ``python -m tests.support.faust_echo_app worker``, configured by
environment variables so the test can give it unique topic names.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import faust

from bus.settings import Settings
from streams.runtime.app import broker_credentials

app = faust.App(
    os.environ["ECHO_APP_ID"],
    broker=f"kafka://{os.environ['ECHO_BROKER']}",
    # The session broker's login, from the environment (tests/conftest.py).
    broker_credentials=broker_credentials(Settings()),
    store="memory://",
    datadir=os.environ["ECHO_DATADIR"],
    web_enabled=False,
    topic_replication_factor=1,
    producer_acks=-1,
)
source = app.topic(os.environ["ECHO_SOURCE"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["ECHO_SINK"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def shout(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
    async for key, value in stream.items():
        await sink.send(key=key, value=value.upper())
        yield None


if __name__ == "__main__":
    app.main()
