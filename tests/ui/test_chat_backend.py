"""The chat page's backend outside Streamlit: what it loads before the first customer arrives."""

from __future__ import annotations

from assistant.sentiment.model import get_sentiment_model
from ui.chat_backend import ChatBackend


def test_warm_loads_and_traces_the_sentiment_model_before_the_first_message(settings):
    """The first customer message must not wait for the sentiment model to load and its one-message encoder
    to be traced (about a second on 2 cores): the page's warm-up does both, with the real models."""
    ChatBackend(settings).warm("no-such-kb")  # no knowledge base yet: retrieval has nothing to load
    model = get_sentiment_model(settings)
    assert model._one_text is not None
    assert model.score("Thanks, that solved it!").label == "positive"
