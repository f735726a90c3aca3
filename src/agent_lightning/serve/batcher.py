"""One generation worker for the gateway: concurrent requests are generated together, a batch at a time.

    batcher = Batcher(model, tokenizer, max_batch_size=8, wait_s=BATCH_WAIT_S)
    batcher.start()
    result = batcher.submit(prompt_ids, max_new_tokens=64, temperature=0.7, top_p=1.0, seed=None).result()
    result.ids, result.ended, result.logprobs, result.batch_size
    batcher.stats()      # {"requests": ..., "batches": ..., "generate_calls": ..., "largest_batch": ...}
    batcher.stop()

A single worker thread owns the model. It takes the oldest waiting request, then collects each further request that
arrives no more than `wait_s` after the one before it (requests that queued while the previous batch was generating
are there at once), up to `max_batch_size` (1: one request at a time). The batch is split into groups that can
share one sampler: all greedy requests (temperature 0) together, unseeded sampled requests by (temperature, top_p),
and each seeded request alone, so a seeded request is reproducible whatever else is being served (it draws from its
own generator on a batch of one). With `gather` (a callable: how many clients may still send a request, e.g. the
agent processes running), the worker waits until that many requests are queued, at most `gather_wait_s` after
taking the first one, so agents that started or finished their tools at different moments are generated together
(serve/agents.py). Each group is one `rollout.generation.CachedSession.generate` call (rows left-padded, finished
rows parked) inside `rollout.episodes.generation_weights`, recording each generated token's logprob. Unseeded
groups draw from a generator seeded from `seed` and the batch number. A failure fails the group's requests, and the
worker goes on.

Not covered: keeping a conversation's KV cache from one request to the next (each request reads its whole prompt),
continuous batching (a request that arrives while a batch generates waits for that batch to end), priorities.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from agent_lightning.rollout.episodes import generation_weights
from agent_lightning.rollout.generation import CachedSession, Sampling

log = logging.getLogger(__name__)

# How long the worker waits for one more request before it generates. Clients answered by the same batch send their
# next requests within milliseconds of each other, sometimes not within 5: with a 5 ms window one run split 8
# agents' calls into uneven batches (mean 6.0, batched throughput 2.92x one-at-a-time) where another kept them
# together (mean 8.0, 3.48x); with 25 ms, two runs kept them together (3.60x, 3.73x) (benchmarks/gateway_batching.py,
# docs/gateway.md#batching). 25 ms is about one generated token's time on a CPU, once per batch.
BATCH_WAIT_S = 0.025


@dataclass
class Job:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    future: Future = field(default_factory=Future)

    def group(self) -> tuple:
        if self.temperature <= 0:
            return ("greedy",)
        if self.seed is not None:
            return ("seeded", id(self))
        return ("sampled", self.temperature, self.top_p)


@dataclass
class Generated:
    ids: list[int]
    ended: bool  # the policy ended its turn (end-of-turn token generated, and included in ids)
    logprobs: list[float]
    batch_size: int  # rows generated together with it (itself included)


class Batcher:
    """The generation worker; see the module docstring."""

    def __init__(self, model: Any, tokenizer: Any, max_batch_size: int = 8, wait_s: float = BATCH_WAIT_S,
                 seed: int = 0, gather: Callable[[], int] | None = None, gather_wait_s: float = 2.0) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.max_batch_size, self.wait_s, self.seed = max_batch_size, wait_s, seed
        self.gather, self.gather_wait_s = gather, gather_wait_s
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats = {"requests": 0, "batches": 0, "generate_calls": 0, "largest_batch": 0, "failed": 0}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gateway-generation", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
               seed: int | None = None) -> Future:
        """Queue one generation; the future's result is a `Generated`."""
        job = Job(list(prompt_ids), max_new_tokens, temperature, top_p, seed)
        self._queue.put(job)
        return job.future

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def _collect(self, first: Job) -> tuple[list[Job], bool]:
        """The batch that starts with `first`, and whether a stop was asked for meanwhile."""
        jobs = [first]
        deadline = time.monotonic() + self.gather_wait_s
        while len(jobs) < self.max_batch_size:
            wait = self.wait_s
            if self.gather is not None:  # wait for every client that may still ask, up to the deadline
                if len(jobs) >= self.gather() or time.monotonic() >= deadline:
                    if self._queue.empty():
                        break
                    wait = 0.0
                else:
                    wait = max(min(0.05, deadline - time.monotonic()), 0.0)
            try:
                job = self._queue.get_nowait() if not wait else self._queue.get(timeout=wait)
            except queue.Empty:
                if self.gather is not None:
                    continue
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            jobs, stopping = self._collect(first)
            with self._lock:
                self._stats["batches"] += 1
                self._stats["requests"] += len(jobs)
                self._stats["largest_batch"] = max(self._stats["largest_batch"], len(jobs))
                number = self._stats["batches"]
            groups: dict[tuple, list[Job]] = defaultdict(list)
            for job in jobs:
                groups[job.group()].append(job)
            for group in groups.values():
                self._generate(group, number)

    def _generate(self, jobs: list[Job], number: int) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        first = live[0]
        sampling = None
        if first.temperature > 0:
            generator = torch.Generator(device=self.model.device)
            generator.manual_seed(first.seed if first.seed is not None else self.seed * 1_000_003 + number)
            sampling = Sampling(first.temperature, first.top_p, generator)
        try:
            session = CachedSession(self.model, self.tokenizer, sampling, logprobs=True)
            with generation_weights(self.model):
                replies = session.generate({k: job.prompt_ids for k, job in enumerate(live)},
                                           {k: job.max_new_tokens for k, job in enumerate(live)})
            with self._lock:
                self._stats["generate_calls"] += 1
            for k, job in enumerate(live):
                ids, ended = replies[k]
                job.future.set_result(Generated(ids, ended, session.logprobs[k], len(live)))
        except Exception as exc:  # noqa: BLE001 - the requests fail, the worker keeps serving
            log.exception("generation failed for a batch of %d", len(live))
            with self._lock:
                self._stats["failed"] += len(live)
            for job in live:
                if not job.future.done():
                    job.future.set_exception(exc)
