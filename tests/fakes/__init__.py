"""Local HTTP servers that speak the OpenAI and Anthropic wire formats, so integration tests (and
the router benchmark) drive the real vendor SDKs without a network or a key.

    with FakeOpenAI() as fake:
        fake.script(Reply.rate_limited(retry_after="2"), Reply.ok())
        ...  # point the SDK at f"{fake.url}/v1" with fake.api_key
        assert fake.last_body["temperature"] == 0.2
"""

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import FakeProvider, Recorded, Reply, ServerThread, closed_port_url

__all__ = [
    "FakeAnthropic",
    "FakeOpenAI",
    "FakeProvider",
    "Recorded",
    "Reply",
    "ServerThread",
    "closed_port_url",
]
