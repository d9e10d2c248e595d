"""Running agent turns for async routes: each turn runs on a thread of its own pool and hands its
events (tokens, the final reply, or the error that stopped it) to the request over an asyncio queue.

The agent is synchronous (database, embeddings, HTTP to vLLM), so the event loop must never run it.
A dedicated pool, sized by ``HELPMATE_API_TURN_THREADS``, keeps long streaming turns from taking
every thread of Starlette's shared pool that the short requests (polls, feedback) need. A turn
runs to its end even when its client goes away: the customer's message and the reply are stored
either way, so nothing said is lost.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable

from assistant.access import Caller

log = logging.getLogger("helpmate.api")
END = object()


class TurnRunner:
    """Turns of one API process; ``agent`` is built on first use (loading the models) and shared."""

    def __init__(self, make_agent: Callable[[], Any], threads: int):
        self._make_agent = make_agent
        self._agent: Any = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="helpmate-turn")

    @property
    def agent(self) -> Any:
        with self._lock:
            if self._agent is None:
                self._agent = self._make_agent()
            return self._agent

    @property
    def loaded(self) -> bool:
        return self._agent is not None

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function`` on the turn pool (work that may load the models, such as starting a conversation)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: function(*args, **kwargs))

    def events(self, caller: Caller, conversation_id: int, text: str) -> AsyncIterator[Any]:
        """The turn's events as the agent yields them, then any exception that ended it (as an item)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the server shut down while the turn ran; the turn was stored all the same
                pass

        def run() -> None:
            try:
                for event in self.agent.stream(conversation_id, text, caller=caller):
                    put(event)
            except BaseException as error:  # handed to the request, which answers it
                put(error)
            finally:
                put(END)

        self._pool.submit(run)

        async def iterate() -> AsyncIterator[Any]:
            while True:
                item = await queue.get()
                if item is END:
                    return
                yield item

        return iterate()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
