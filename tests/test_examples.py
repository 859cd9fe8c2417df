"""Every example runs as a script, offline, and does what its docstring promises."""

from __future__ import annotations

import ast
import os
import select
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TESTED = {
    "chat_loop.py",
    "transcript_filter.py",
    "resample_chain.py",
    "interruption_demo.py",
    "tools_agent.py",
    "tone_provider.py",
}


def run(name: str, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_every_example_is_a_documented_script_with_a_test() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == TESTED  # a new example needs a test here
    for name in scripts:
        tree = ast.parse((EXAMPLES / name).read_text())
        assert ast.get_docstring(tree), f"{name} has no docstring"
        assert any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body), (
            f"{name} has no __main__ guard"
        )


@pytest.mark.parametrize("name", sorted(TESTED))
def test_every_example_has_help(name: str) -> None:
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_chat_loop_scripted_turns() -> None:
    result = run("chat_loop.py", "--chunks", "--script", "hi", "what can you do?", "bye", "never sent")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bot> Hello! I am a scripted assistant, running entirely offline." in out
    assert "[tts chunk] 'Not much,'" in out  # the early first chunk, at a clause with two words
    assert "[tts chunk] 'But the pipeline around me is real, e.g. the sentence splitter that feeds a TTS stage.'" in out
    assert "Goodbye" in out
    assert "never sent" not in out  # "bye" ends the loop
    assert out.rstrip().endswith("-- 3 replies, bye.")
    assert result.stderr == ""


def test_chat_loop_without_a_terminal_runs_the_demo_and_exits() -> None:
    result = run("chat_loop.py")  # stdin is /dev/null: not a TTY, no lines
    assert result.returncode == 0, result.stderr
    assert "you> hi" in result.stdout
    assert result.stdout.rstrip().endswith("-- 3 replies, bye.")


def test_chat_loop_reads_piped_lines() -> None:
    result = run("chat_loop.py", stdin="hello there\n\ntell me about Dr. Who\n")
    assert result.returncode == 0, result.stderr
    assert 'You said "tell me about Dr. Who", which has 5 words. This is turn 2' in result.stdout
    assert result.stdout.rstrip().endswith("-- 2 replies, bye.")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")
def test_chat_loop_interactive_on_a_terminal() -> None:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(sys.executable, [sys.executable, str(EXAMPLES / "chat_loop.py")])
    output = b""

    def read_until(marker: bytes, timeout: float = 15) -> None:
        """Read until ``marker`` appears in what arrives from now on."""
        nonlocal output
        start = len(output)
        deadline = time.monotonic() + timeout
        while marker not in output[start:] and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    return

    try:
        read_until(b"you> ")
        os.write(fd, b"hello\n")
        read_until(b"first token after")
        if b"you> " not in output.rsplit(b"first token after", 1)[1]:
            read_until(b"you> ")
        os.write(fd, b"\x04")  # Ctrl-D: end of input
        read_until(b"reply, bye.")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    text = output.decode()
    assert "bot> Hello! I am a scripted assistant" in text
    assert "-- 1 reply, bye." in text


def test_transcript_filter_redacts_digits_everywhere() -> None:
    result = run("transcript_filter.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("final") and "'my card number is #### #### #### ####'" in line for line in lines)
    assert any(line.startswith("turn") and "#### ####" in line for line in lines)
    assert "4111" not in "".join(line.split("->", 1)[1] for line in lines if "->" in line)
    assert "-- 4 frame(s) rewritten with mode 'redact', 0 error(s)" in result.stdout


def test_transcript_filter_title_case() -> None:
    result = run("transcript_filter.py", "--mode", "both", "call 555 0100 tomorrow")
    assert result.returncode == 0, result.stderr
    assert "-> 'Call ### #### Tomorrow'   words: Call ### #### Tomorrow" in result.stdout


def test_resample_chain_on_a_generated_tone(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    result = run("resample_chain.py", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "24000 samples (ideal 24000.0)" in result.stdout
    assert "pitch : in 440.0 Hz, out 440.0 Hz" in result.stdout
    assert "max difference 0 Int16 steps" in result.stdout
    assert "level : in -9.01 dBFS rms / -6.00 dBFS peak; out -9.01 dBFS rms" in result.stdout
    with wave.open(str(out), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()) == (24000, 1, 2, 24000)


def test_resample_chain_on_a_stereo_file(tmp_path: Path) -> None:
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    t = np.arange(48000 // 2) / 48000
    left = (0.25 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    with wave.open(str(source), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(np.stack([left, left], axis=1).tobytes())
    result = run("resample_chain.py", "--input", str(source), "--output", str(out), "--rate", "16000")
    assert result.returncode == 0, result.stderr
    assert "8000 samples (ideal 8000.0)" in result.stdout
    assert "out 1000.0 Hz" in result.stdout
    with wave.open(str(out), "rb") as wav:
        assert (wav.getframerate(), wav.getnframes()) == (16000, 8000)


def test_resample_chain_reports_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    result = run("resample_chain.py", "--input", str(bad), "--output", str(tmp_path / "o.wav"))
    assert result.returncode == 2
    assert "error:" in result.stderr and "bad.wav" in result.stderr


def test_interruption_demo_keeps_the_epoch_contract() -> None:
    result = run("interruption_demo.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "stale frames after the interrupt: 0" in out
    assert out.count(": ok") == 4
    assert "assistant interrupted=True" in out
    assert "assistant interrupted=False 'Sure. Hi there, nice to meet you!'" in out


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_tools_agent_calls_tools_in_parallel_and_reads_errors_back(provider: str) -> None:
    lines = ["what is (3 + 4) * 12", "weather in Oslo and the time in Paris", "weather in Atlantis", "bye"]
    result = run("tools_agent.py", "--provider", provider, "--script", *lines)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bot> One moment. That makes 84." in out
    assert "  [tool] calculate(expression='(3 + 4) * 12')\n  [tool] calculate -> 84" in out
    weather = "  [tool] get_weather(city='Oslo')\n  [tool] get_time(zone='Europe/Paris')\n"
    assert weather in out  # two calls in one step (parallel), answered in one follow-up
    assert "In Oslo it is 4 degrees celsius and light snow; it is " in out
    assert "error: LookupError: no weather station in Atlantis" in out
    assert "That did not work (LookupError: no weather station in Atlantis)." in out
    assert out.rstrip().endswith(f"-- 4 replies, 4 tool calls, 7 requests to the {provider} fake")
    assert result.stderr == ""


def test_tools_agent_demo_runs_without_a_terminal() -> None:
    result = run("tools_agent.py")
    assert result.returncode == 0, result.stderr
    assert "[tool] get_time(zone='Asia/Tokyo')" in result.stdout
    assert "error: ZeroDivisionError: division by zero" in result.stdout


def test_tone_provider_joins_the_registry_with_one_declaration() -> None:
    result = run("tone_provider.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "tts providers: deepgram, local, piper, espeak, tone"
    assert lines[1] == "settings table: | `TONE_PITCH` | `440` | Pitch of the `tone` TTS's beeps, in Hz. |"
    assert lines[2] == "plan: TTS_PROVIDER=tone -> tone {'model': 'sine 440 Hz'}"
    assert lines[3].startswith("voxline check: tts  tone  sine 440 Hz  OK")
    assert lines[3].endswith("1.3 s of audio at 24 kHz")  # "Hello, this is a voice check.": 7 syllables
