"""`rnnplay` / `rnnplay tui` from the command line: no TTY, bad flags, a light import."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnplay", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def test_without_a_terminal_it_says_so_in_one_line_and_exits_2():
    for args in ((), ("tui",), ("--refresh-hz", "2")):
        proc = run(*args)
        assert proc.returncode == 2, proc
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "terminal" in lines[0] and "rnnplay train" in lines[0]
        assert proc.stdout == "" and "\x1b[" not in proc.stderr  # no escape codes into a pipe


def test_out_of_range_flags_fail_in_one_line():
    for args in (("--refresh-hz", "0"), ("tui", "--hidden", "-3"), ("tui", "--device", "tpu")):
        proc = run(*args)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_the_command_module_imports_neither_textual_nor_torch():
    code = ("import sys, rnnplay.commands.tui as t, argparse; p = argparse.ArgumentParser(); t.add_arguments(p); "
            "assert 'textual' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_building_the_app_does_not_import_torch():
    code = ("import asyncio, sys\nfrom rnnplay.tui.app import make_app\n"
            "async def main():\n"
            "    app = make_app(warm_backend=False)\n"
            "    async with app.run_test(size=(80, 24)) as pilot:\n"
            "        await pilot.pause(0.2)\n"
            "        assert 'torch' not in sys.modules, 'the first frame must not wait for torch'\n"
            "asyncio.run(main())\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
