"""The page across a restart, in real headless Chromium: loaded through nginx (deploy/nginx.conf) in front of two
`voxline serve` processes sharing redis-server. The backend serving it is SIGTERM'd mid-reply: the page says the
server is restarting, the reply plays to its end, and the page reconnects at once — through nginx, to the other
backend — with its resume token, and the conversation goes on with its history."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser_support import browser_page, record, screenshot
from ops_support import deploy_stack, http

pytestmark = [pytest.mark.browser, pytest.mark.nginx, pytest.mark.redis]

REPLY = "Sure. It will be sunny in the morning and cloudy later, with a little wind by the evening."


def _typed(page: object, text: str) -> None:
    page.fill("#typed-input", text)  # type: ignore[attr-defined]
    page.press("#typed-input", "Enter")  # type: ignore[attr-defined]


def test_the_page_resumes_on_the_other_backend_after_a_restart(tmp_path: Path) -> None:
    from voxline.testing.fakes._script import Pacing
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    dg = FakeDeepgram(transcripts=[], tts_seconds_per_char=0.02).start_in_thread()
    gm = FakeGemini(replies=REPLY, pacing=Pacing(first_token_delay=0.2, tokens_per_second=12))
    try:
        with gm.running_in_thread(), deploy_stack(tmp_path, dg, gm) as (port, agents), browser_page(None) as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("window.voxline && window.voxline.session && window.voxline.session.ready")
            first = page.evaluate("window.voxline.session")
            assert first["resumed"] is False and first["resume_token"]
            _typed(page, "what is the weather")
            page.wait_for_function("window.voxline.replies.filter(r => r.length).length === 1", timeout=20000)
            page.wait_for_function("window.voxline.state.server === 'complete'", timeout=20000)
            # The reply plays out (bot started, bot stopped): a turn typed over it would barge in and cut it.
            page.wait_for_function("(window.voxline.messages.speaking || 0) >= 2", timeout=20000)

            serving = [a for a in agents if http(f"{a.url}/livez")[1]["sessions"] == 1]
            assert len(serving) == 1
            victim = serving[0]
            _typed(page, "and tomorrow")
            page.wait_for_function("window.voxline.state.server === 'generating'", timeout=20000)
            sent = victim.sigterm()
            page.wait_for_function("window.voxline.state.server === 'draining'", timeout=5000)
            assert "restarting" in page.inner_text("#error")
            screenshot(page, "draining")
            page.wait_for_function("window.voxline.session && window.voxline.session.resumed === true", timeout=30000)
            moved = time.monotonic() - sent
            assert page.evaluate("window.voxline.counters.connects") == 2
            replies = page.evaluate("window.voxline.replies.filter(r => r.length)")
            assert replies == [REPLY, REPLY]  # the second reply was whole before the restart
            assert victim.process.wait(timeout=20) in (0, -15)

            _typed(page, "and the day after")
            page.wait_for_function("window.voxline.replies.filter(r => r.length).length === 3", timeout=20000)
            turns = gm.requests[-1].chat.turns
            assert [t for r, t in turns if r == "user"] == ["what is the weather", "and tomorrow", "and the day after"]
            assert page.errors == [] and page.console_errors == []
            record("page-resume-after-restart", resumed_after_s=round(moved, 2), connects=2)
    finally:
        dg.stop_thread()
