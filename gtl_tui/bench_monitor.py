"""Measure the monitor on a big run: ``python -m gtl_tui.bench_monitor [--events N] [--population P]``.

Writes a scripted 100,000-event log (population 1,000) to a temporary run directory, then times: reading and
folding the log, attaching the app and drawing it (headless), key to screen for keys that re-sort, move the
selection and open the heavier tabs, and one live tick. Targets: attach+draw < 2 s, key to screen < 100 ms.

Key to screen is measured from the key event entering the app until every message it caused has been handled
and the screen's update has been laid out, drawn and turned into the escape sequences a terminal would be sent
(headless Textual skips only that last step; the bench adds it back). The "+frame" column is the CPU time of
drawing one more whole frame after that, for a conservative upper bound. Keys come ``--gap`` seconds apart
(0.4 s, a quick human pace; the monitor uses such pauses, e.g. to rebuild the hidden views of a newly
selected individual after 0.3 s; ``--gap 0`` measures keys pressed back to back). No fixed sleeps are counted (Pilot's
``press`` and ``pause`` sleep at least 20 ms each). The machine may be shared: wall time includes waiting
for a core, so this process's CPU time is given too, with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from textual import events
from textual._compositor import CompositorUpdate
from textual.pilot import Pilot

from engine.events import EVENTS_FILE
from gtl_tui.app import MonitorApp
from gtl_tui.scripted import scripted_run, write_events
from gtl_tui.sources import read_log
from gtl_tui.state import RunState


def terminal_console(app: MonitorApp) -> Console:
    w, h = app.size
    return Console(width=w, height=h, file=io.StringIO(), force_terminal=True, color_system="truecolor")


def draw(app: MonitorApp) -> None:
    """Render the whole screen to escape sequences (a full frame: more than most updates send)."""
    terminal_console(app).print(app.screen._compositor.render_update(full=True))


def write_updates_as_terminal(app: MonitorApp) -> None:
    """Make the headless app turn each screen update into escape sequences, as it does for a real terminal.

    Headless, Textual computes every update (layout, the changed widgets' lines, the compositor's strips) but
    skips converting it for the terminal; this adds that last step back.
    """
    display = app._display

    def _display(screen: Any, renderable: Any) -> None:
        if isinstance(renderable, CompositorUpdate) and not app._batch_count:
            renderable.render_segments(terminal_console(app))
        display(screen, renderable)

    app._display = _display  # type: ignore[method-assign]


class Timer:
    """Wall time and this process's CPU time (the machine is shared: CPU time shows our own cost)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu, self.done = time.perf_counter(), time.process_time(), False
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.done:
            self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.done = True


def _busy(app: MonitorApp) -> bool:
    """Whether a message is queued anywhere, or the screen has layout, repaint or callbacks pending.

    Like Textual itself, the screen is updated only once every message pump is idle (Textual then resumes
    its refresh timer, which fires within one frame, 1/60 s): the changes a key causes are laid out and drawn
    together, not once per message.
    """
    screen = app.screen
    if not all(node._message_queue.empty() for node in (app, *screen.walk_children(with_self=True))):
        return True
    if screen._layout_required or screen._repaint_required or screen._scroll_required \
            or screen._dirty_widgets or screen._callbacks:
        screen._on_timer_update()  # what the screen's refresh timer would do next
        return True
    return False


async def settle(app: MonitorApp, pilot: Pilot) -> None:
    """Until every message is handled and the screen has no layout, repaint or callback pending.

    Yields to the event loop until nothing is queued or dirty, then confirms with Pilot's barrier (a callback
    through every message pump, which also waits out handlers that were running), and starts over if that
    turned up more work.
    """
    for _ in range(10_000):
        await asyncio.sleep(0)
        if _busy(app):
            continue
        await pilot._wait_for_screen()
        if not _busy(app):
            return


CHARACTERS = {"left_square_bracket": "[", "right_square_bracket": "]"}


def send_key(app: MonitorApp, key: str) -> None:
    """The key as the terminal driver delivers it."""
    event = events.Key(key, key if len(key) == 1 else CHARACTERS.get(key))
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


async def measure_app(run_dir: Path, size: tuple[int, int], live_tail: list, rounds: int = 3,
                      gap: float = 0.4) -> dict[str, Any]:
    """Each measurement: (wall, cpu) to the terminal update, and the cpu of one more full frame."""
    with Timer() as t:
        app = MonitorApp(run_dir, refresh_interval=3600)  # ticks are driven by hand below
        write_updates_as_terminal(app)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            t.__exit__()
            out: dict[str, Any] = {"attach+draw": (t.wall, t.cpu, full_frame(app)),
                                   "widgets": len(list(app.query("*")))}

            async def key(k: str) -> tuple[float, float, float]:
                await pilot.pause(gap)  # keys come at a quick human pace; the app may use the gap
                await settle(app, pilot)
                with Timer() as t:
                    send_key(app, k)
                    await settle(app, pilot)
                return t.wall, t.cpu, full_frame(app)

            keys = [("z", "key z (unbound: harness)"), ("2", "key 2 (population tab)"),
                    ("o", "key o (sort by next column)"), ("O", "key O (reverse sort)"),
                    ("down", "key down (select next)"), ("pagedown", "key pagedown (select)"),
                    ("3", "key 3 (lineage tab)"), ("4", "key 4 (mutations tab)"), ("5", "key 5 (learngene tab)"),
                    ("b", "key b (back to best)"), ("left_square_bracket", "key [ (older generation)"),
                    ("left_square_bracket", "key [ again (older)"), ("E", "key E (the elite's generation)"),
                    ("right_square_bracket", "key ] (newer generation)"), ("b", "key b (current generation)"),
                    ("1", "key 1 (overview)"), ("2", "key 2 again (population)"),
                    ("o", "key o again (sort)"), ("6", "key 6 (events tab)"), ("2", "key 2 from events")]
            times: dict[str, list[tuple[float, float, float]]] = {}
            for _ in range(rounds):  # the same sequence again: the median of each key is reported
                for k, name in keys:
                    if k == "o":
                        app.run_screen.population_table.focus()
                    times.setdefault(name, []).append(await key(k))
                await key("1")
            for name, runs in times.items():
                out[name] = tuple(statistics.median(r[n] for r in runs) for n in range(3))
            half = len(live_tail) // 2
            for tab, part in (("overview", live_tail[:half]), ("population", live_tail[half:])):
                app.run_screen.action_show_tab(tab)
                with open(run_dir / EVENTS_FILE, "a") as f:
                    f.writelines(e.to_json() + "\n" for e in part)
                await settle(app, pilot)
                await pilot.pause()
                with Timer() as t:
                    await app.run_screen.read_now()
                    await settle(app, pilot)
                out[f"live tick, {tab} ({len(part)} new events)"] = (t.wall, t.cpu, full_frame(app))
            out["widgets after"] = len(list(app.query("*")))
    return out


def full_frame(app: MonitorApp) -> float:
    """CPU seconds of drawing one more whole frame (what a measurement "with a full frame" adds)."""
    c = time.process_time()
    draw(app)
    return time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--population", type=int, default=1_000)
    ap.add_argument("--generations", type=int, default=None,
                    help="generations in the log (default: as many as --events fill); --events is then raised "
                    "to hold them (200 generations of 1,000: 600,000 events)")
    ap.add_argument("--size", default="120x40", help="terminal size, WxH")
    ap.add_argument("--rounds", type=int, default=3, help="times each key is measured (the median is shown)")
    ap.add_argument("--gap", type=float, default=0.4, help="seconds between keys (a quick human pace)")
    ap.add_argument("--skip-tiny", action="store_true", help="skip the same keys on a tiny run (for scale)")
    args = ap.parse_args()
    print(f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min) on {os.cpu_count()} cpus; "
          f"a 10M-step Python loop takes {calibrate():.2f} s of cpu (about 0.4 s on an idle modern core)")
    size = tuple(int(x) for x in args.size.split("x"))
    gens = args.events // (args.population * 3) + 2
    if args.generations is not None:
        gens = args.generations
        args.events = max(args.events, (gens - 1) * args.population * 3 + args.population)
    with tempfile.TemporaryDirectory(prefix="gtlbench") as tmp:
        run_dir = Path(tmp)
        t = time.perf_counter()
        events = scripted_run(population=args.population, generations=gens, max_events=args.events + 1000)
        head, tail = events[: args.events], events[args.events:]  # the tail: 1,000 events for two live ticks
        write_events(run_dir, head)
        print(f"log: {len(head):,} events, population {args.population:,}, "
              f"{(run_dir / EVENTS_FILE).stat().st_size / 1e6:.1f} MB (written in {time.perf_counter() - t:.1f} s)")
        del events
        gc.collect()
        with Timer() as t_read:
            parsed, _ = read_log(run_dir / EVENTS_FILE)
        rss0 = rss_mb()
        with Timer() as t_fold:
            state = RunState()
            state.apply_all(parsed)
        print(f"read+parse: {t_read.wall * 1000:.0f} ms (cpu {t_read.cpu * 1000:.0f})   "
              f"fold: {t_fold.wall * 1000:.0f} ms (cpu {t_fold.cpu * 1000:.0f})   "
              f"state: {len(state.individuals):,} individuals, {len(state.mutations):,} mutations, "
              f"feed {len(state.feed)} events, +{rss_mb() - rss0:.0f} MB RSS while folding")
        del parsed, state
        gc.collect()
        results = asyncio.run(measure_app(run_dir, size, tail, args.rounds, args.gap))
    baseline: dict[str, Any] = {}
    if not args.skip_tiny:
        with tempfile.TemporaryDirectory(prefix="gtlbench") as tmp:  # the same keys on a tiny run, for scale
            small = scripted_run(population=6, generations=4, live_evaluated=3)
            write_events(tmp, small[:-20])
            baseline = asyncio.run(measure_app(Path(tmp), size, small[-20:], args.rounds, args.gap))
    print(f"{'':<38} {'wall':>9} {'cpu':>9} {'+frame':>8}   {'tiny run (P=6): wall, cpu':>26}")
    for name, value in results.items():
        if name.startswith("widgets"):
            print(f"{name:<38} {value:>9.0f}   {baseline.get(name, 0):>13.0f}")
            continue
        line = f"{name:<38} {value[0] * 1000:>6.1f} ms {value[1] * 1000:>6.1f} ms {value[2] * 1000:>5.1f} ms"
        base = baseline.get(name) or next((v for k, v in baseline.items() if k.startswith("live tick")
                                           and k.split(" (")[0] == name.split(" (")[0]), None)
        if base:
            line += f"   {base[0] * 1000:>6.1f} ms {base[1] * 1000:>6.1f} ms"
        print(line)
    keys = [v for k, v in results.items() if k.startswith("key")]
    print(f"slowest key to screen: {max(v[0] for v in keys) * 1000:.0f} ms wall, "
          f"{max(v[1] for v in keys) * 1000:.0f} ms cpu (target < 100 ms); with one more full frame "
          f"{max(v[1] + v[2] for v in keys) * 1000:.0f} ms cpu; attach+draw "
          f"{results['attach+draw'][0]:.2f} s wall, {results['attach+draw'][1]:.2f} s cpu (target < 2 s); "
          f"RSS now {rss_mb():.0f} MB, peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"load average now {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"the 10M-step loop now takes {calibrate():.2f} s of cpu")


def calibrate() -> float:
    c = time.process_time()
    s = 0
    for i in range(10_000_000):
        s += i
    return time.process_time() - c


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


if __name__ == "__main__":
    main()
