"""A text-only chat loop: type a line, watch a streamed reply. No keys, no network.

The pipeline is the text half of the voice agent::

    ScriptedLLM  →  SentenceAggregator  →  ConsolePrinter

``ScriptedLLM`` subclasses :class:`voxline.llm.LLMProcessor`, the base every real provider uses, and streams a
canned reply word by word; so the turn handling, the context and the sentence splitting you see here are the
real ones. ``ConsolePrinter`` is a ten-line custom processor that prints what reaches the end of the pipeline.

Run it::

    python examples/chat_loop.py                      # interactive (Ctrl-D or "bye" to quit)
    python examples/chat_loop.py --script "hi" "bye"   # scripted turns, e.g. for tests
    echo "hello there" | python examples/chat_loop.py  # lines from a pipe
    python examples/chat_loop.py --chunks              # also show the chunks a TTS stage would get

When stdin is not a terminal and gives no lines (``< /dev/null``), a short demo conversation runs instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Iterable

from voxline.aggregation import SentenceAggregator
from voxline.context import Context
from voxline.frames import (
    EndFrame,
    Frame,
    LLMResponseEndFrame,
    MetricsFrame,
    SpeakTextFrame,
    TextFrame,
    UserTextFrame,
)
from voxline.llm import LLMProcessor
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.task import PipelineTask

DEMO_SCRIPT = ("hi", "what can you do?", "bye")


class ScriptedLLM(LLMProcessor):
    """A pretend model: picks a canned reply for the last user turn and streams it one word at a time."""

    def __init__(self, *, word_delay: float = 0.01) -> None:
        super().__init__(system_prompt="You are a scripted demo assistant.")
        self.word_delay = word_delay

    def reply_for(self, context: Context) -> str:
        said = context.turns[-1].text.strip()
        lowered = said.lower()
        if lowered.rstrip("!.") in {"hi", "hello", "hey", "hello there"}:
            return "Hello! I am a scripted assistant, running entirely offline. Ask me anything, or say bye."
        if lowered.startswith("bye"):
            return "Goodbye, and thanks for trying voxline."
        if "what can you do" in lowered:
            return (
                "Not much, honestly: I stream canned replies, word by word. "
                "But the pipeline around me is real, e.g. the sentence splitter that feeds a TTS stage."
            )
        turn = sum(1 for t in context.turns if t.role == "user")
        return f'You said "{said}", which has {len(said.split())} words. This is turn {turn}; I only echo.'

    async def stream(self, context: Context) -> AsyncIterator[str]:
        words = self.reply_for(context).split(" ")
        for i, word in enumerate(words):
            await asyncio.sleep(self.word_delay)
            yield word if i == 0 else " " + word


class ConsolePrinter(Processor):
    """Prints the reply as it streams; signals the end of each reply so the loop can ask for the next line."""

    def __init__(self, *, show_chunks: bool) -> None:
        super().__init__()
        self.show_chunks = show_chunks
        self.reply_done = asyncio.Event()
        self.chunks: list[str] = []
        self.ttft: float | None = None

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextFrame):
            print(frame.text, end="", flush=True)
        elif isinstance(frame, SpeakTextFrame):
            self.chunks.append(frame.text)
        elif isinstance(frame, MetricsFrame) and frame.name == "llm.ttft":
            self.ttft = frame.value
        elif isinstance(frame, LLMResponseEndFrame):
            print()
            if self.show_chunks:
                for chunk in self.chunks:
                    print(f"  [tts chunk] {chunk.strip()!r}")
            ttft = f"{1000 * self.ttft:.0f} ms" if self.ttft is not None else "n/a"
            print(f"  ({len(self.chunks)} speakable chunk(s), first token after {ttft})")
            self.chunks.clear()
            self.reply_done.set()
        await self.push(frame, direction)


async def _prompt(prompt: str) -> str | None:
    """``input()`` off the event loop, in a daemon thread so that Ctrl-C never waits for a pending read."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def read() -> None:
        try:
            line: str | None = input(prompt)
        except (EOFError, OSError):
            line = None
        loop.call_soon_threadsafe(_settle, answer, line)

    threading.Thread(target=read, name="chat-input", daemon=True).start()
    return await answer


def _settle(future: asyncio.Future[str | None], value: str | None) -> None:
    if not future.done():
        future.set_result(value)


async def _lines(script: list[str] | None) -> AsyncIterator[str]:
    """The user's lines: from --script, from the terminal, or from a pipe (the demo script if it is empty)."""
    if script is not None:
        for line in script:
            print(f"you> {line}")
            yield line
        return
    if sys.stdin.isatty():
        while (typed := await _prompt("you> ")) is not None:
            yield typed
        print()
        return
    piped = [line.rstrip("\n") for line in sys.stdin]
    lines: Iterable[str] = [line for line in piped if line.strip()] or DEMO_SCRIPT
    for line in lines:
        print(f"you> {line}")
        yield line


async def chat(script: list[str] | None, *, show_chunks: bool = False, word_delay: float = 0.01) -> int:
    """Run the loop; returns the number of replies."""
    printer = ConsolePrinter(show_chunks=show_chunks)
    task = PipelineTask(Pipeline([ScriptedLLM(word_delay=word_delay), SentenceAggregator(), printer]), name="chat")
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    replies = 0
    try:
        async for line in _lines(script):
            if not line.strip():
                continue
            printer.reply_done.clear()
            await task.queue_frame(UserTextFrame(text=line))
            print("bot> ", end="", flush=True)
            await printer.reply_done.wait()
            replies += 1
            if line.strip().lower().startswith("bye"):
                break
        await task.queue_frame(EndFrame())
        await runner
    finally:
        if not runner.done():
            await task.cancel()
            await runner
    for error in task.errors:
        print(f"error: {error.message}", file=sys.stderr)
    return replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--script", nargs="+", metavar="LINE", help="user turns to send instead of reading stdin")
    parser.add_argument("--chunks", action="store_true", help="show the speakable chunks a TTS stage would get")
    parser.add_argument("--word-delay", type=float, default=0.01, help="seconds between streamed words")
    args = parser.parse_args(argv)
    try:
        replies = asyncio.run(chat(args.script, show_chunks=args.chunks, word_delay=args.word_delay))
    except KeyboardInterrupt:
        print()
        return 130
    print(f"-- {replies} repl{'y' if replies == 1 else 'ies'}, bye.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
