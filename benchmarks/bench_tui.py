"""The terminal app's speed targets, measured through a real terminal (tmux).

1. First frame: seconds from starting ``rnnplay`` in a fresh tmux pane until the screen shows the
   status line (target < 1.5 s). Includes Python's start; torch is not imported for it.
2. Training throughput with the app open against ``rnnplay train`` headless on the same settings
   (target >= 95%). The two runs take turns on the machine: every ``--slice`` seconds one is
   stopped (SIGSTOP) and the other continued (SIGCONT), so the slow minutes of a shared machine
   slow both alike (back-to-back runs moved 12-19 steps/s here, hiding a 5% effect). Each run's
   rate is its steps over its own training time (``elapsed_s``, the app's through
   ``RNNPLAY_TUI_REPORT``) minus the time it was stopped. ``--calibrate`` puts a second headless
   run in the app's place: the method should then read about 100%.
3. Keypress-to-screen latency while training (target p95 < 100 ms): right / left switch between the
   Train and Generate tabs, F1 opens and closes the help window; the time from sending the key
   until tmux holds a screen that shows the change. One tmux control-mode client (``tmux -C``)
   sends the keys and is told each time the app writes, and the screen is read only then: no
   polling, no tmux client forked per look (an earlier version polled ``capture-pane`` every 1 ms,
   which took a core from the app on a 2-core machine). Then ctrl+q while training: the seconds
   until the process is gone (target < 2 s).
4. The Runs tab while training (target p95 < 100 ms): 10 recorded runs of 20,000 steps overlaid,
   x switches the chart between step and wall time; the time until tmux shows the new x axis.
5. Co-writing (target p95 < 50 ms): the Write tab on a W2-size checkpoint (3 layers of 256, 256-wide
   embeddings, written by ``rnnplay train --steps 1``), keys that type a character, pick the
   model's top proposal (1) and undo (backspace), each the time until tmux shows the next
   proposals (the status line's character count, drawn in the same frame as them).

    python benchmarks/bench_tui.py                                   # full (about 8 minutes)
    python benchmarks/bench_tui.py --quick                           # smoke run (about a minute)
    python benchmarks/bench_tui.py --only throughput --calibrate     # check the method (A/A)

On a shared machine the figures move with the load: the lead re-runs the final ones alone.
``BENCH_DEBUG=1`` prints each throughput round's raw steps and seconds, and a py-spy dump of the
app if it does not quit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STEP = re.compile(r"\bstep (\d+)/\d+")
PY = shlex.quote(sys.executable)


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


def wait_for(pred, timeout: float, poll: float = 0.05):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError


class Control:
    """One tmux control-mode client (``tmux -C``) attached to a session.

    Keys and screen captures go through this one connection, and tmux tells it (``%output``) each
    time the app writes to the terminal, so a measurement looks at the screen only when something
    was drawn: no tmux client is forked per look, and nothing polls the cores the app runs on.
    """

    def __init__(self, session: str) -> None:
        self.session = session
        self.proc = subprocess.Popen(["tmux", "-C", "attach-session", "-t", session], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, errors="replace")
        self.cond = threading.Condition()
        self.outputs = 0  # %output notifications so far
        self.last_output = 0.0  # perf_counter() of the latest one
        self.replies: list[list[str]] = []
        self.gone = False  # the client ended (the session is gone)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        block: list[str] | None = None
        mine = False
        for line in self.proc.stdout:  # type: ignore[union-attr]
            now = time.perf_counter()
            line = line.rstrip("\n")
            if block is not None:
                if line.startswith(("%end ", "%error ")):
                    if mine:
                        with self.cond:
                            self.replies.append(block)
                            self.cond.notify_all()
                    block = None
                else:
                    block.append(line)
            elif line.startswith("%begin "):
                block, mine = [], line.split()[-1] == "1"  # flag 1: a reply to this client's command
            elif line.startswith("%output "):
                with self.cond:
                    self.outputs += 1
                    self.last_output = now
                    self.cond.notify_all()
        with self.cond:
            self.gone = True
            self.cond.notify_all()

    def command(self, cmd: str, timeout: float = 10.0) -> list[str]:
        with self.cond:
            n = len(self.replies)
            self.proc.stdin.write(cmd + "\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            if not self.cond.wait_for(lambda: len(self.replies) > n or self.gone, timeout):
                raise TimeoutError(cmd)
            return self.replies[n] if len(self.replies) > n else []

    def screen(self) -> str:
        return "\n".join(self.command(f"capture-pane -p -t {self.session}"))

    def keys(self, *keys: str) -> None:
        self.command(f"send-keys -t {self.session} " + " ".join(keys))

    def wait_screen(self, pred, timeout: float) -> float:
        """Wait until ``pred(screen)`` holds; the time of the output that made it so."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            seen = self.outputs
        if pred(self.screen()):
            return time.perf_counter()
        while True:
            with self.cond:
                if not self.cond.wait_for(lambda: self.outputs > seen, max(0.0, deadline - time.perf_counter())):
                    raise TimeoutError
                seen, at = self.outputs, self.last_output
            if pred(self.screen()):
                return at

    def dead(self) -> bool:
        return self.command(f"display-message -p -t {self.session} '#{{pane_dead}}'") == ["1"]

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(5)
        except Exception:
            self.proc.kill()


def start_app(session: str, workdir: Path, flags: str, env: str = "", wrapped: bool = False) -> None:
    """``rnnplay`` in a new 100x30 tmux session. ``wrapped``: as a child of the pane's shell, not
    the pane's own process: tmux sends SIGCONT at once to a pane process that stops, so only a
    grandchild stays stopped (the throughput rounds stop and continue the app)."""
    cmd = (f"cd {shlex.quote(str(workdir))} && {'' if wrapped else 'exec '}env TERM=xterm-256color {env} "
           f"{PY} -m rnnplay {flags}" + ("; exit $?" if wrapped else ""))
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd)
    tmux("set-option", "-t", session, "remain-on-exit", "on")


def first_frame(workdir: Path, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        session = f"bench-ff-{os.getpid()}-{i}"
        t0 = time.perf_counter()
        start_app(session, workdir, "--refresh-hz 4")
        ctl = Control(session)
        try:
            times.append(ctl.wait_screen(lambda s: "○ idle" in s, 30) - t0)
            ctl.keys("C-q")
            wait_for(ctl.dead, 30, 0.05)
        finally:
            ctl.close()
            tmux("kill-session", "-t", session)
    return times


class Alternator:
    """Lets one of two processes run at a time (SIGSTOP / SIGCONT) and counts each one's stopped time.

    A training run's own clock (``elapsed_s``, wall time from its first step to its last) keeps
    going while it is stopped; minus the stopped time it is the time it ran alone.
    """

    def __init__(self) -> None:
        self.stopped_s: dict[int, float] = {}
        self._since: dict[int, float] = {}

    def stop(self, pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        self._since[pid] = time.perf_counter()

    def cont(self, pid: int) -> None:
        os.kill(pid, signal.SIGCONT)
        since = self._since.pop(pid, None)
        if since is not None:
            self.stopped_s[pid] = self.stopped_s.get(pid, 0.0) + time.perf_counter() - since


def start_headless(workdir: Path, settings: str, name: str) -> subprocess.Popen:
    """``rnnplay train`` on ``settings``, returned once it is training (its first evaluation line)."""
    proc = subprocess.Popen(f"cd {shlex.quote(str(workdir))} && exec {PY} -m rnnplay train {settings} "
                            f"--out {name}/run.pt --force --json", shell=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # type: ignore[union-attr]  # no terminal: a header, then one line per evaluation
        seen.append(line)
        if line.startswith("step "):
            return proc
    proc.kill()
    raise RuntimeError("rnnplay train did not start: " + "".join(seen)[-2000:])


def end_headless(proc: subprocess.Popen, alt: Alternator) -> tuple[int, float]:
    """SIGINT (it saves, as a user's Ctrl-C would) -> (steps, seconds it trained while not stopped)."""
    alt.cont(proc.pid)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    r = json.loads(out.strip().splitlines()[-1])
    return r["step"], r["elapsed_s"] - alt.stopped_s.get(proc.pid, 0.0)


def throughput_round(workdir: Path, seconds: float, slice_s: float, extra: str = "",
                     calibrate: bool = False) -> tuple[float, float]:
    """(app steps/s, headless steps/s) over one run each, taking turns every ``slice_s`` seconds.

    ``rnnplay train`` headless starts first and trains alone until its first evaluation line,
    then is stopped; the app starts, F5 trains the same settings; from then on the two take turns,
    so a slow minute on a shared machine slows both alike. Each rate is the run's steps over
    its own training time minus the time it spent stopped. Then ctrl+q ends the app and SIGINT
    the headless run (both save, as a user's would); both report step and elapsed_s.
    ``calibrate``: a second headless run takes the app's place (the method should read ~100%).
    """
    settings = "--corpus play --steps 10000000"
    alt = Alternator()
    session = f"bench-thr-{os.getpid()}"
    report = workdir / "app-report.json"
    report.unlink(missing_ok=True)
    ctl: Control | None = None
    procs: list[subprocess.Popen] = []
    try:
        cli = start_headless(workdir, settings, "headless")
        procs.append(cli)
        alt.stop(cli.pid)
        if calibrate:
            other = start_headless(workdir, settings, "headless2")
            procs.append(other)
            app_pid = other.pid
        else:
            start_app(session, workdir, f"{settings} --refresh-hz 4 {extra}", env=f"RNNPLAY_TUI_REPORT={report}",
                      wrapped=True)
            ctl = Control(session)
            ctl.wait_screen(lambda s: "○ idle" in s, 60)
            shell = tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip()
            app_pid = int(subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()[0])
            ctl.keys("F5")
            ctl.wait_screen(lambda s: "● running" in s, 120)
            ctl.close()  # no client of ours parses the app's output while the two take turns
            ctl = None
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:  # the app runs first, the headless run second
            time.sleep(slice_s)
            alt.stop(app_pid)
            alt.cont(cli.pid)
            time.sleep(slice_s)
            alt.stop(cli.pid)
            alt.cont(app_pid)
        if calibrate:
            app_steps, app_s = end_headless(procs[1], alt)
        else:
            tmux("send-keys", "-t", session, "C-q")
            try:
                wait_for(lambda: tmux("display-message", "-p", "-t", session, "#{pane_dead}").strip() == "1", 60, 0.1)
            except TimeoutError:
                if os.environ.get("BENCH_DEBUG"):
                    print(subprocess.run(["py-spy", "dump", "-p", str(app_pid)], capture_output=True, text=True).stdout)
                raise RuntimeError("the app did not quit on ctrl+q; its screen:\n"
                                   + tmux("capture-pane", "-p", "-t", session)) from None
            r_app = json.loads(report.read_text())
            app_steps, app_s = r_app["step"], r_app["elapsed_s"] - alt.stopped_s.get(app_pid, 0.0)
        cli_steps, cli_s = end_headless(cli, alt)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
        if ctl is not None:
            ctl.close()
        tmux("kill-session", "-t", session)
    if os.environ.get("BENCH_DEBUG"):
        print(f"    app {app_steps} steps in {app_s:.2f} s, headless {cli_steps} in {cli_s:.2f} s, stopped {alt.stopped_s}")
    return app_steps / app_s, cli_steps / cli_s


def throughput(workdir: Path, rounds: int, seconds: float, slice_s: float, extra: str = "",
               calibrate: bool = False) -> tuple[list[float], list[float]]:
    app_rates, cli_rates = [], []
    for i in range(rounds):
        a, c = throughput_round(workdir, seconds, slice_s, extra, calibrate)
        app_rates.append(a)
        cli_rates.append(c)
        print(f"  round {i + 1}: app {a:.2f} steps/s, headless {c:.2f} steps/s ({a / c * 100:.1f}%)", flush=True)
    return app_rates, cli_rates


QUITS: list[float] = []  # seconds from ctrl+q (while training) until the process is gone
KEYS = (  # (key, text that shows when it has acted, whether the text should be there afterwards)
    ("Right", "colour by a unit of h", True),  # the tab bar has focus: next tab (Generate)
    ("Left", "colour by a unit of h", False),  # back to Train
    ("F1", "rnnplay help", True),  # the help window opens
    ("F1", "rnnplay help", False),  # and closes
)


def latency(workdir: Path, samples: int, extra: str = "") -> dict[str, list[float]]:
    """Per kind of key, seconds from sending it until tmux has the screen that shows its effect."""
    session = f"bench-lat-{os.getpid()}"
    start_app(session, workdir, f"--corpus play --steps 1000000 --refresh-hz 4 {extra}")
    ctl = Control(session)
    out: dict[str, list[float]] = {}
    try:
        ctl.wait_screen(lambda s: "○ idle" in s, 60)
        ctl.keys("F5")
        ctl.wait_screen(lambda s: "● running" in s, 120)
        time.sleep(3.0)  # let training settle into its stride
        for i in range(samples):
            key, marker, present = KEYS[i % len(KEYS)]
            t0 = time.perf_counter()
            ctl.keys(key)
            at = ctl.wait_screen(lambda s: (marker in s) == present, 10)
            label = {"Right": "tab switch", "Left": "tab switch"}.get(key, "help open" if present else "help close")
            out.setdefault(label, []).append(at - t0)
            time.sleep(0.15 + (i % 7) * 0.037)  # spread the presses over the training step's phases
        t0 = time.perf_counter()
        ctl.keys("C-q")
        wait_for(ctl.dead, 60, 0.01)
        QUITS.append(time.perf_counter() - t0)
    finally:
        ctl.close()
        tmux("kill-session", "-t", session)
    return out


STEP_AXIS = re.compile(r"\d step\b")  # the Runs chart's x axis ends "20,000 step" (by time: "800 s")


def runs_latency(workdir: Path, samples: int) -> list[float]:
    """The Runs tab with 10 recorded runs of 20,000 steps overlaid while the app trains: seconds from
    sending x (step <-> wall time, which redraws the whole chart) until tmux shows the new axis."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_runs import build_store

    db = workdir / "runs-tab.db"
    db.unlink(missing_ok=True)
    build_store(str(db), 10, 20_000)
    session = f"bench-runs-{os.getpid()}"
    start_app(session, workdir, "--corpus play --steps 1000000 --refresh-hz 4", env=f"RNNPLAY_RUNS_DB={db}")
    ctl = Control(session)
    out: list[float] = []
    try:
        ctl.wait_screen(lambda s: "○ idle" in s, 60)
        ctl.keys("F5")
        ctl.wait_screen(lambda s: "● running" in s, 120)
        ctl.keys("F4")
        ctl.wait_screen(lambda s: "11 runs" in s, 30)  # the ten and the one training
        time.sleep(1.0)
        ctl.keys("Down")  # past the live run: the ten finished ones
        for _ in range(10):
            ctl.keys("Space")
            time.sleep(0.2)
            ctl.keys("Down")
            time.sleep(0.2)
        ctl.wait_screen(lambda s: STEP_AXIS.search(s) is not None and "settings that differ" in s, 30)
        time.sleep(3.0)
        if os.environ.get("BENCH_DEBUG"):
            print(ctl.screen(), file=sys.stderr)
        for i in range(samples):
            by_step = i % 2 == 1  # the press before this one switched to time
            t0 = time.perf_counter()
            ctl.keys("x")
            at = ctl.wait_screen(lambda s: (STEP_AXIS.search(s) is not None) == by_step, 10)
            out.append(at - t0)
            time.sleep(0.15 + (i % 7) * 0.037)
    finally:
        ctl.close()
        tmux("kill-session", "-t", session)
    return out


CHARS = re.compile(r"\b(\d+) chars · ")


def cowrite_latency(workdir: Path, samples: int) -> list[tuple[str, float]]:
    """(kind of key, seconds from sending it until tmux shows the proposals after it) in the Write tab."""
    ckpt = workdir / "w2" / "w2.pt"
    subprocess.run(f"cd {shlex.quote(str(workdir))} && {PY} -m rnnplay train --corpus play --hidden 256 "
                   f"--layers 3 --embed 256 --steps 1 --out {shlex.quote(str(ckpt))}",
                   shell=True, check=True, capture_output=True, timeout=300)
    session = f"bench-cowrite-{os.getpid()}"
    start_app(session, workdir, f"--checkpoint {shlex.quote(str(ckpt))} --refresh-hz 4")
    ctl = Control(session)
    out: list[tuple[str, float]] = []

    def count(screen: str) -> int | None:
        m = CHARS.search(screen)
        return int(m.group(1)) if m else None

    try:
        ctl.wait_screen(lambda s: "○ idle" in s, 60)
        ctl.keys("F12")
        ctl.wait_screen(lambda s: "1-9 picks" in s, 60)
        n = 0
        for i in range(samples):
            # type, pick, type, pick, undo: the text grows by about one character in two keys
            key, label, step = (("e", "type", 1), ("1", "pick", 1), ("t", "type", 1), ("1", "pick", 1),
                                ("BSpace", "undo", -1))[i % 5]
            t0 = time.perf_counter()
            ctl.keys(key)
            n += step
            try:
                at = ctl.wait_screen(lambda s, want=n: count(s) == want, 10)
            except TimeoutError:
                raise RuntimeError(f"key {key!r} ({label}): the Write tab did not show {n} characters; "
                                   f"its screen:\n{ctl.screen()}") from None
            out.append((label, at - t0))
            time.sleep(0.05 + (i % 7) * 0.013)  # a typist's pace, spread over the app's timers
    finally:
        ctl.close()
        tmux("kill-session", "-t", session)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--rounds", type=int, default=None, help="throughput rounds (one app and one headless run each)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds of taking turns per round")
    ap.add_argument("--slice", type=float, default=2.0, help="seconds per turn (default 2)")
    ap.add_argument("--calibrate", action="store_true",
                    help="throughput only: a second headless run in the app's place (should read ~100%%)")
    ap.add_argument("--leave-a-core", action="store_true",
                    help="also measure the app with --torch-threads cpu_count-1 (a core left to the UI)")
    ap.add_argument("--only", choices=("first-frame", "latency", "runs-tab", "cowrite", "throughput"), default=None,
                    help="run one measurement only")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print("bench_tui: tmux is not installed; it is needed to drive a real terminal", file=sys.stderr)
        return 2
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (12.0 if args.quick else 60.0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    print(f"bench_tui: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; work folder {workdir}")
    try:
        want = (lambda name: args.only in (None, name))
        leave = f"--torch-threads {max(1, (os.cpu_count() or 2) - 1)}"
        if want("first-frame"):
            ff = first_frame(workdir, 3 if args.quick else 7)
            print(f"first frame: median {statistics.median(ff):.2f} s, max {max(ff):.2f} s over {len(ff)} runs "
                  f"(target < 1.5 s)", flush=True)
        for extra in (("", leave) if args.leave_a_core else ("",)) if want("latency") else ():
            kinds = latency(workdir, 12 if args.quick else 100, extra)
            lat = [x for v in kinds.values() for x in v]
            detail = ", ".join(f"{k} p50 {pct(v, 0.5) * 1e3:.0f} ms" for k, v in kinds.items())
            print(f"keypress -> screen while training{' (' + extra + ')' if extra else ''}: "
                  f"p50 {pct(lat, 0.5) * 1e3:.0f} ms, p95 {pct(lat, 0.95) * 1e3:.0f} ms, "
                  f"max {max(lat) * 1e3:.0f} ms over {len(lat)} keys (target p95 < 100 ms); {detail}; "
                  f"ctrl+q while training exited in {QUITS[-1]:.2f} s (target < 2 s)", flush=True)
        if want("runs-tab"):
            lat = runs_latency(workdir, 12 if args.quick else 60)
            print(f"Runs tab, 10 runs x 20,000 steps overlaid, x (redraw by step/time) while training: "
                  f"p50 {pct(lat, 0.5) * 1e3:.0f} ms, p95 {pct(lat, 0.95) * 1e3:.0f} ms, max {max(lat) * 1e3:.0f} ms "
                  f"over {len(lat)} keys (target p95 < 100 ms)", flush=True)
        if want("cowrite"):
            keys = cowrite_latency(workdir, 20 if args.quick else 200)
            lat = [x for _, x in keys]
            detail = ", ".join(f"{k} p50 {pct([x for kk, x in keys if kk == k], 0.5) * 1e3:.0f} ms"
                               for k in ("type", "pick", "undo"))
            print(f"co-writing at W2 size (3x256, from a checkpoint), key -> next proposals on screen: "
                  f"p50 {pct(lat, 0.5) * 1e3:.0f} ms, p95 {pct(lat, 0.95) * 1e3:.0f} ms, max {max(lat) * 1e3:.0f} ms "
                  f"over {len(lat)} keys (target p95 < 50 ms); {detail}", flush=True)
        for extra in (("", leave) if args.leave_a_core else ("",)) if want("throughput") else ():
            who = "headless (calibration: a second headless run in the app's place)" if args.calibrate else "app"
            print(f"throughput of the {who}{' (' + extra + ')' if extra else ''}, default model on 'play', {rounds} round(s) "
                  f"of {seconds:g} s taking turns every {args.slice:g} s:", flush=True)
            app, cli = throughput(workdir, rounds, seconds, args.slice, extra, args.calibrate)
            ratios = [a / c for a, c in zip(app, cli)]
            print(f"throughput: app {statistics.median(app):.2f} steps/s vs headless {statistics.median(cli):.2f} "
                  f"steps/s; app/headless median {statistics.median(ratios) * 100:.1f}% (rounds "
                  f"{', '.join(f'{r * 100:.1f}' for r in ratios)}; target >= 95%)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("note: a shared machine moves these figures; re-run alone for final numbers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
