"""Session resume: a client that lost its socket comes back with its resume token and the conversation goes on
— the model sees the history, the turn count continues — in the same process (the in-process store) or in
another one sharing Debian's redis-server. Tokens work once and expire; a broken store never breaks a session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from app_helpers import serve_app
from ops_support import WsClient, cloud_env, cloud_fakes, free_port, redis_server, ws_client
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from voxline.apps.voice_agent.drain import Drain
from voxline.apps.voice_agent.resume import dump_turns, restore_turns
from voxline.apps.voice_agent.store import MemoryStore
from voxline.context import Context, ToolCall, ToolResult

REPLIES = ["It is sunny today.", "Tomorrow brings rain.", "Then it clears up."]


@asynccontextmanager
async def agents(tmp_path: Path, n: int = 1, **env: str) -> AsyncIterator[tuple[list[str], list[Any], Any]]:
    """``n`` in-process agents on the same fakes (and the same store settings); yields their URLs, states and
    the fake Gemini."""
    async with cloud_fakes(REPLIES, tokens_per_second=0) as (dg, gm), contextlib.AsyncExitStack() as stack:
        urls, states = [], []
        for _ in range(n):
            app = create_app(Config(environ={"LOG_DIR": "", **cloud_env(dg, gm), **env}), static_dir=tmp_path)
            urls.append(await stack.enter_async_context(serve_app(app)))
            states.append(app.state.agent)
        yield urls, states, gm


async def _turn(client: WsClient, text: str, n: int) -> None:
    """A typed turn, answered and played out (a turn typed over the reply would barge in and cut it)."""
    await client.send({"type": "text", "data": text})
    await client.wait_message("status", "complete", count=n, timeout=15)
    await client.wait_message("speaking", {"who": "bot", "state": "stopped"}, count=n, timeout=15)


async def _drop(client: WsClient) -> None:
    client.ws.transport.abort()  # no close frame: a lost network, a closed laptop lid
    await asyncio.sleep(0)


async def _gone(state: Any) -> None:
    async with asyncio.timeout(5):
        while state.sessions:  # noqa: ASYNC110 - polling the server's count from outside
            await asyncio.sleep(0.01)


async def test_a_dropped_client_resumes_its_conversation_with_its_history(tmp_path: Path) -> None:
    async with agents(tmp_path) as ([url], [state], gm):
        async with ws_client(f"{url}/ws") as first:
            await first.wait_message("session")
            session = first.session()
            assert session["resumed"] is False and len(session["resume_token"]) >= 40
            await _turn(first, "what is the weather", 1)
            await _drop(first)
        async with ws_client(f"{url}/ws?resume={session['resume_token']}") as second:
            await second.wait_message("session")
            resumed = second.session()
            assert resumed["resumed"] is True and resumed["conversation"] == session["conversation"] == session["id"]
            assert resumed["resume_token"] != session["resume_token"]
            await _turn(second, "and tomorrow", 1)
            assert second.of_type("metrics")[-1]["turn"] == 2  # the turn count goes on
        chat = gm.requests[-1].chat
        assert chat.turns == (("user", "what is the weather"), ("assistant", REPLIES[0]), ("user", "and tomorrow"))
        # Used once: the first token resumes nothing now; the newest one still does.
        async with ws_client(f"{url}/ws?resume={session['resume_token']}") as third:
            await third.wait_message("session")
            assert third.session()["resumed"] is False
        await _gone(state)
        async with ws_client(f"{url}/ws?resume={resumed['resume_token']}") as fourth:
            await fourth.wait_message("session")
            assert fourth.session()["resumed"] is True
        text = state.metrics.resumes.labels("resumed")._value.get()
        assert text >= 2


async def test_a_conversation_waits_resume_seconds_then_is_gone(tmp_path: Path) -> None:
    async with agents(tmp_path, RESUME_SECONDS="1") as ([url], [state], _gm):
        async with ws_client(f"{url}/ws") as first:
            await first.wait_message("session")
            token = first.session()["resume_token"]
            await _turn(first, "hello", 1)
        await _gone(state)
        await asyncio.sleep(1.3)
        async with ws_client(f"{url}/ws?resume={token}") as late:
            await late.wait_message("session")
            assert late.session()["resumed"] is False
            await _turn(late, "hello again", 1)  # a fresh conversation, working
    assert len(_gm.requests[-1].chat.turns) == 1


async def test_a_drained_session_saves_its_last_words_before_it_closes(tmp_path: Path) -> None:
    """The drain's 1012 and a resume right after it: the reply that finished during the drain is in the history."""
    async with agents(tmp_path) as (urls, states, gm):
        # The in-process store belongs to its app, so the resume is on the same app here; the Redis and nginx
        # tests move between processes.
        async with ws_client(f"{urls[0]}/ws") as client:
            await client.wait_message("session")
            token = client.session()["resume_token"]
            await client.send({"type": "text", "data": "weather please"})
            await client.wait_message("text_chunk", timeout=10)
            await states[0].drain.run(lambda: states[0].sessions)
            assert await client.closed(timeout=10) == 1012
        states[0].drain = Drain(30)  # let this app take the resume (a drained process would be gone by now)
        async with ws_client(f"{urls[0]}/ws?resume={token}") as again:
            await again.wait_message("session")
            assert again.session()["resumed"] is True
            await _turn(again, "thanks", 1)
        assert gm.requests[-1].chat.turns[:2] == (("user", "weather please"), ("assistant", REPLIES[0]))


async def test_a_resume_token_admits_its_client_where_auth_is_required(tmp_path: Path) -> None:
    token = "static-token-0123456789abcdef"
    async with agents(tmp_path, AUTH_TOKEN=token) as ([url], [state], _gm):
        async with ws_client(f"{url}/ws?token={token}") as first:
            await first.wait_message("session")
            resume = first.session()["resume_token"]
            await _turn(first, "hi", 1)
        await _gone(state)
        async with ws_client(f"{url}/ws?resume={resume}") as second:  # no AUTH_TOKEN: the resume token suffices
            await second.wait_message("session")
            assert second.session()["resumed"] is True
        async with ws_client(f"{url}/ws?resume=not-a-token") as stranger:
            await stranger.wait_for(lambda _: stranger._reader.done(), timeout=5)
            assert stranger.close_code == 1008


@pytest.mark.redis
async def test_through_redis_a_conversation_resumes_in_another_process(tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis_url:
        async with agents(tmp_path, n=2, REDIS_URL=redis_url) as (urls, states, gm):
            async with ws_client(f"{urls[0]}/ws") as first:
                await first.wait_message("session")
                token = first.session()["resume_token"]
                await _turn(first, "what is the weather", 1)
                await _turn(first, "and tomorrow", 2)
                await _drop(first)
            async with ws_client(f"{urls[1]}/ws?resume={token}") as second:  # the other agent
                await second.wait_message("session")
                assert second.session()["resumed"] is True
                await _turn(second, "and after that", 1)
            assert [role for role, _ in gm.requests[-1].chat.turns] == ["user", "assistant"] * 2 + ["user"]
            health = states[1].resumes.health()
            assert health == {"seconds": 30.0, "store": "redis", "store_ok": True}


async def test_a_store_that_is_down_costs_the_resume_never_the_session(tmp_path: Path) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with agents(tmp_path, REDIS_URL=down) as ([url], [state], _gm):
        async with ws_client(f"{url}/ws?resume=some-token") as client:
            await client.wait_message("session")
            assert client.session()["resumed"] is False
            await _turn(client, "still there?", 1)
        await _gone(state)
        assert state.resumes.health()["store_ok"] is False
        assert state.metrics.store_errors.labels("take")._value.get() >= 1


# --- the record ----------------------------------------------------------------------------------------------


def test_turns_round_trip_with_tool_steps_and_a_bad_record_changes_nothing() -> None:
    source = Context("system")
    source.add_user("time in Oslo?")
    source.add_tool_calls([ToolCall("c1", "get_time", {"city": "Oslo"}, '{"city": "Oslo"}')], text="Checking.")
    source.add_tool_results([ToolResult("c1", "get_time", {"time": "12:00"})])
    source.add_assistant("It is noon", interrupted=True)
    restored = Context("another prompt")
    assert restore_turns(restored, dump_turns(source)) == 4
    assert restored.turns == source.turns and restored.system_prompt == "another prompt"
    assert restored.turns[1].tool_calls[0].raw_arguments == '{"city": "Oslo"}'

    target = Context()
    target.add_user("kept")
    bad = [*dump_turns(source), {"role": "tool", "results": [{"call_id": "nope", "name": "x"}]}]
    with pytest.raises(ValueError):
        restore_turns(target, bad)
    assert [t.text for t in target.turns] == ["kept"]


async def test_the_memory_store_takes_once_and_expires() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    assert await store.put("k", "v", 10)
    assert not await store.put("missing", "v", 10, only_if_present=True)
    assert await store.take("k") == "v" and await store.take("k") is None
    await store.put("k", "v", 10)
    now[0] = 9.0
    assert await store.touch("k", 10)
    now[0] = 18.0
    assert await store.exists("k")
    now[0] = 19.5
    assert not await store.exists("k") and len(store) == 0
