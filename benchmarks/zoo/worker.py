"""What the Keras and the Opacus worker share: arguments, the timed loop, the fork server.

Each (model, framework, mode) runs in a fresh process, so its peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`) is that configuration's alone. Importing
TensorFlow + tfpriv, or torch + Opacus, takes 10-60 s on a loaded 2-core machine, so
each framework has one server process (`serve`) that imports once and *forks* a fresh
child per configuration; no framework op runs in the server, so the child starts with
no thread pools or graphs. A child's peak RSS includes the imported libraries, as a
freshly started process's would. Protocol on stdout, per configuration: the child
prints `PID <pid>` and `RESULT {json}` (see `Result`); the server then `EXIT <status>`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import resource
import sys
import time
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from zoo import spec

RESULT_PREFIX = 'RESULT '
MAX_TIMED_STEPS = 100
INTERLEAVED = ':interleaved'   # the mode suffix of `interleaved`'s results


@dataclasses.dataclass
class Result:
    """One configuration's measurements (status 'ok', 'refused' or 'error')."""

    model: str
    framework: str
    mode: str                       # 'nodp' | 'dp' | 'ghost' (Opacus's ghost clipping)
    status: str = 'ok'
    message: str = ''
    path: str = ''                  # clipping path / grad_sample_mode
    seconds_per_step: Optional[float] = None
    cpu_seconds_per_step: Optional[float] = None  # process CPU time (all threads), median
    best_seconds_per_step: Optional[float] = None  # the fastest timed step (wall): no stall
    seconds_per_epoch: Optional[float] = None
    base_rss_mb: Optional[float] = None   # RSS after building, before the first step
    peak_rss_mb: Optional[float] = None   # ru_maxrss at the end
    metric: Optional[float] = None  # test accuracy, or MSE for regression
    steps: int = 0                  # timed steps (>= --steps; see `measure`)
    num_params: Optional[int] = None  # trainable parameters (the twins should agree)


@dataclasses.dataclass
class Built:
    """What a framework's `build` hands the timed loop."""

    step: Callable[[np.ndarray, np.ndarray], None]   # one training step on (x, y)
    predict: Callable[[np.ndarray], np.ndarray]      # class scores / probability / value
    path: str                                        # clipping path, or 'non-DP'
    num_params: Callable[[], int]                    # after training (subclassed models build late)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """One configuration's arguments (a line the runner sends to `serve`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--model', required=True, choices=sorted(spec.MODELS))
    parser.add_argument('--mode', required=True, choices=('nodp', 'dp', 'ghost'))
    parser.add_argument('--interleave', help='comma-separated modes: time them in this one '
                        'process, alternating their steps (`interleaved`)')
    parser.add_argument('--data', required=True, help='.npz written by spec.prepare_data')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--min-seconds', type=float, default=3.0)
    return parser.parse_args(argv)


def rss_mb() -> float:
    """Current resident set size (MB), from /proc/self/statm."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_steps(step: Callable[[np.ndarray, np.ndarray], None],
                batches: Iterator[Tuple[np.ndarray, np.ndarray]],
                count: int) -> List[Tuple[float, float]]:
    """(wall seconds, process CPU seconds) of each of the next `count` training steps.

    CPU time is the steadier of the two on a shared machine: other jobs' load
    stretches the wall time of a step far more than the CPU work it needs.
    """
    seconds = []
    for x, y in itertools.islice(batches, count):
        start, start_cpu = time.perf_counter(), time.process_time()
        step(x, y)
        seconds.append((time.perf_counter() - start, time.process_time() - start_cpu))
    return seconds


def summarize(result: Result, seconds: List[Tuple[float, float]]) -> None:
    """Sets `result`'s step times from the (wall, CPU) seconds of its timed steps: the medians
    and the fastest wall time (a step that no outside stall stretched; see `runner`)."""
    result.seconds_per_step, result.cpu_seconds_per_step = map(
        float, np.median(np.array(seconds), axis=0))
    result.best_seconds_per_step = float(min(wall for wall, _ in seconds))
    result.steps = len(seconds)


def emit(result: Result) -> None:
    print(RESULT_PREFIX + json.dumps(dataclasses.asdict(result)), flush=True)


def measure(args: argparse.Namespace, built: Built, model: spec.ZooModel,
            arrays) -> Tuple[List[Tuple[float, float]], float]:
    """((wall, CPU) seconds of each timed step, test metric): trains the budget (`warmup + steps` batches), scores it,
    then times more steps.

    The metric is taken after exactly the budget; the step times are those of the
    budget's `steps` timed steps plus, for fast models, more steps until they add up to
    `min_seconds` (at most `MAX_TIMED_STEPS`): a 10 ms step timed 5 times on a shared
    machine is mostly noise. `summarize` keeps their median and the fastest one.
    """
    x, y = spec.split(arrays, model, 'train')
    batches = spec.cycle(x, y)
    timed_steps(built.step, batches, args.warmup)
    seconds = timed_steps(built.step, batches, args.steps)
    x_test, y_test = spec.split(arrays, model, 'test')
    metric = spec.score(model, built.predict(x_test), y_test)
    while sum(wall for wall, _ in seconds) < args.min_seconds and len(seconds) < MAX_TIMED_STEPS:
        seconds += timed_steps(built.step, batches, 1)
    return seconds, metric


def run(args: argparse.Namespace, framework: str,
        build: Callable[[spec.ZooModel, str, int], Built]) -> None:
    """Builds, trains `warmup + steps` batches, scores on the test split and emits the Result.

    An exception from `build(model, mode, num_examples)` is a refusal, one later an error.
    """
    model = spec.MODELS[args.model]
    result = Result(args.model, framework, args.mode, steps=args.steps)
    arrays = dict(np.load(args.data))
    try:
        built = build(model, args.mode, spec.epoch_size(model, arrays))
    except Exception as error:  # pylint: disable=broad-except
        result.status, result.message = 'refused', spec.one_line(error)
        emit(result)
        return
    result.base_rss_mb, result.path = rss_mb(), built.path
    try:
        seconds, result.metric = measure(args, built, model, arrays)
        summarize(result, seconds)
        result.num_params = int(built.num_params())
    except Exception as error:  # pylint: disable=broad-except
        result.status, result.message = 'error', spec.one_line(error)
    if result.seconds_per_step is not None:
        per_epoch = -(-spec.epoch_size(model, arrays) // spec.BATCH_SIZE)
        result.seconds_per_epoch = result.seconds_per_step * per_epoch
    result.peak_rss_mb = peak_rss_mb()
    emit(result)


def interleaved(args: argparse.Namespace, framework: str,
                build: Callable[[spec.ZooModel, str, int], Built]) -> None:
    """Every mode of `args.interleave` built in this process, then one step of each in turn
    (after `warmup` steps each) until the fastest has run `min_seconds` (at least `steps`,
    at most `MAX_TIMED_STEPS` rounds). A change of machine load then hits all modes alike,
    so their time ratio is steadier than between processes run one after another. Emits
    one Result per mode (mode '<mode>:interleaved'; times only: no metric, no peak RSS)."""
    model = spec.MODELS[args.model]
    arrays = dict(np.load(args.data))
    results, steps = {}, {}
    for mode in args.interleave.split(','):
        results[mode] = Result(args.model, framework, mode + INTERLEAVED)
        try:
            steps[mode] = build(model, mode, spec.epoch_size(model, arrays)).step
        except Exception as error:  # pylint: disable=broad-except
            results[mode].status, results[mode].message = 'refused', spec.one_line(error)
    batches = spec.cycle(*spec.split(arrays, model, 'train'))
    seconds: dict = {mode: [] for mode in steps}
    try:
        for step in steps.values():
            timed_steps(step, batches, args.warmup)
        while seconds and (len(next(iter(seconds.values()))) < args.steps or min(
                sum(wall for wall, _ in times) for times in seconds.values()) < args.min_seconds):
            for mode, step in steps.items():
                seconds[mode] += timed_steps(step, batches, 1)
            if len(seconds[mode]) >= MAX_TIMED_STEPS:
                break
    except Exception as error:  # pylint: disable=broad-except
        for mode in steps:
            results[mode].status, results[mode].message = 'error', spec.one_line(error)
    for mode, times in seconds.items():
        if results[mode].status == 'ok' and times:
            summarize(results[mode], times)
    for result in results.values():
        emit(result)


def serve(framework: str, build: Callable[[spec.ZooModel, str, int], Built],
          setup: Callable[[], None]) -> None:
    """Fork server: for each JSON argument list on stdin, one child runs `setup` then `run`."""
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                print(f'PID {os.getpid()}', flush=True)
                setup()
                args = parse_args(json.loads(line))
                (interleaved if args.interleave else run)(args, framework, build)
                status = 0
            finally:
                sys.stdout.flush()
                os._exit(status)  # pylint: disable=protected-access
        _, status = os.waitpid(pid, 0)
        print(f'EXIT {status}', flush=True)
