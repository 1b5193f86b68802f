"""Where a generation's wall time goes: training, host work and waiting (the ``timing`` of ``generation_completed``).

- ``train``: the trainer's training and scoring of the generation. On CUDA it is measured with CUDA events around
  the device work (so a GPU that waits on a slow launch loop still counts as training, a GPU idle between
  generations does not); elsewhere with ``perf_counter``.
- ``wait``: time the loop blocks on background work it needs (the previous checkpoint write, the preparation of
  this generation's individuals).
- ``host``: the rest of the wall time: births, task data, selection, mutation, gene extraction, events, the
  checkpoint hand-off.
``wall`` runs from the end of the previous generation (its ``generation_completed``) to this one's, so the work
done between two generations counts in the later one. On CUDA the timing also carries the peak memory of the
generation (``torch.cuda.max_memory_allocated``, reset per generation) and, when ``pynvml`` can be imported, the
mean GPU utilisation sampled while the generation ran. Neither is ever required.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any

import torch

#: How often the optional NVML sampler reads the GPU's utilisation (NVML itself averages over ~1/6-1 s).
NVML_PERIOD_S = 0.25


class DeviceTimer:
    """Accumulates the seconds of timed sections of device work (CUDA events on CUDA, the wall clock elsewhere).

    ``section()`` marks one section; ``seconds()`` synchronises on the recorded events (call it after the work's
    results have been read back anyway) and returns the total since ``reset()``.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self._pairs: list[tuple[Any, Any]] = []
        self._host = 0.0

    def reset(self) -> None:
        self._pairs.clear()
        self._host = 0.0

    @contextmanager
    def section(self):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            try:
                yield
            finally:
                end.record()
                self._pairs.append((start, end))
        else:
            t0 = time.perf_counter()
            try:
                yield
            finally:
                self._host += time.perf_counter() - t0

    def seconds(self) -> float:
        total = self._host
        for start, end in self._pairs:
            end.synchronize()
            total += start.elapsed_time(end) / 1000.0
        return total


class GpuSampler:
    """Mean GPU utilisation (percent) over a window, read from NVML by a daemon thread; inert without pynvml."""

    def __init__(self, device: torch.device) -> None:
        self._handle = None
        self._samples: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if device.type != "cuda":
            return
        try:
            import pynvml  # optional: never a dependency

            pynvml.nvmlInit()
            index = device.index if device.index is not None else torch.cuda.current_device()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # noqa: BLE001 (no pynvml, no driver library, another GPU numbering: just no reading)
            self._handle = None
            return
        threading.Thread(target=self._loop, name="gtl-nvml", daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(NVML_PERIOD_S):
            try:
                util = int(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            except Exception:  # noqa: BLE001
                return
            with self._lock:
                self._samples.append(util)

    def take(self) -> float | None:
        """The mean utilisation since the last ``take`` (None without NVML or samples)."""
        with self._lock:
            samples, self._samples = self._samples, []
        return round(sum(samples) / len(samples), 1) if samples else None

    def close(self) -> None:
        self._stop.set()


class GenerationClock:
    """The wall-time split of one generation after another (see the module's docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self.gpu = GpuSampler(device)
        self.start()

    def start(self) -> None:
        """Begin a generation's window (at the end of the previous one)."""
        self.t0 = time.perf_counter()
        self.wait = 0.0
        self.gpu.take()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    @contextmanager
    def waiting(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.wait += time.perf_counter() - t0

    def split(self, train: float) -> dict[str, float]:
        """The timing of the window so far, given the seconds the trainer trained; then a new window begins."""
        wall = time.perf_counter() - self.t0
        train = min(max(train, 0.0), wall)
        wait = min(self.wait, wall - train)
        out: dict[str, float] = {"wall": round(wall, 4), "train": round(train, 4),
                                 "host": round(max(wall - train - wait, 0.0), 4), "wait": round(wait, 4)}
        if self.cuda:
            out["peak_mem"] = float(torch.cuda.max_memory_allocated(self.device))
            util = self.gpu.take()
            if util is not None:
                out["gpu_util"] = util
        self.start()
        return out

    def close(self) -> None:
        self.gpu.close()
