"""Batched generation over multi-turn conversations that keeps each row's KV cache between turns.

    session = CachedSession(model, tokenizer)                     # greedy
    session = CachedSession(model, tokenizer, Sampling(0.8, 1.0, torch.Generator().manual_seed(0)))
    replies = session.generate({task_index: prompt_text, ...}, max_new_tokens)       # turn 1
    replies = session.generate({task_index: tool_results_ids, ...}, {task_index: n})  # turn 2: rows left out end
    # replies: {task_index: (generated token ids, ended with the end-of-turn token)}

Segments are text or token ids; `max_new_tokens` is one limit for every row or one per row. Used by
rollouts.play_episodes (evaluation greedy, GRPO sampled). What it does that `model.generate` does not:
  - a turn feeds only each row's new text, left-padded into one block appended to the whole batch; padding (and
    anything after a row's end-of-turn token) is masked and positions come from the mask, so every row sees
    exactly its own conversation, written in the policy's own tokens;
  - rows whose episode ended are dropped between turns, and rows that finished their reply stop costing compute
    within the turn: when fewer than half of the rows in the decode batch are still generating, the finished
    ones are parked (their cache set aside) and the batch shrinks; parked rows rejoin, right-padded, at the end
    of the turn;
  - the cache grows into preallocated room (`GrowingLayer`) instead of re-concatenating the whole cache at
    every generated token, which at a batch of 100 and ~700 tokens of context copied ~3 GB per token;
  - on the first turn, the tokens all rows share (system prompt, tool list) are read once and their cache
    copied to every row.
Sampling is temperature + nucleus (top-p) from the session's own generator. With `CachedSession(..., logprobs=True)`,
`session.logprobs[task_index]` holds, after each `generate`, the log-probability of each generated token under the
distribution it was drawn from: log softmax(logits / temperature) before the top-p cut (what TRL's GRPO loss
computes), plain log softmax when greedy. Not covered: top-k, repetition
penalties, beam search, models with sliding-window or non-attention cache layers
(those get transformers' own DynamicCache layers and are correct, just without the preallocated growth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer


class GrowingLayer(DynamicLayer):
    """A DynamicLayer that writes new keys/values into spare room and exposes views of the filled part, so adding
    one token costs one token's copy rather than a copy of the whole cache (DynamicLayer's torch.cat)."""

    room = 256  # tokens of spare room added when the buffer is full

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._adopt(key_states[:, :, :0].contiguous(), value_states[:, :, :0].contiguous())

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor, room: int = 0) -> None:
        """Use `keys`/`values` as the filled part of the buffers, copied into new ones when `room` spare tokens
        are asked for (without room, fresh tensors are taken as they are)."""
        if not room:
            self._keys, self._values = keys.contiguous(), values.contiguous()
            self.keys, self.values = self._keys, self._values
            return
        batch, heads, length, dim = keys.shape
        self._keys = keys.new_empty(batch, heads, length + room, dim)
        self._values = values.new_empty(batch, values.shape[1], length + room, values.shape[-1])
        self._keys[:, :, :length] = keys
        self._values[:, :, :length] = values
        self.keys, self.values = self._keys[:, :, :length], self._values[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length, new = self.keys.shape[-2], key_states.shape[-2]
        if length + new > self._keys.shape[-2]:
            self._adopt(self.keys, self.values, room=new + self.room)
        self._keys[:, :, length:length + new] = key_states
        self._values[:, :, length:length + new] = value_states
        self.keys, self.values = self._keys[:, :, :length + new], self._values[:, :, :length + new]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self._adopt(self.keys[indices], self.values[indices])

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._adopt(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0))


def new_cache(model: Any) -> Cache:
    """A cache of GrowingLayers for a full-attention model; transformers' DynamicCache for anything else."""
    config = getattr(model, "config", None)
    text = config.get_text_config(decoder=True) if config is not None else None
    layer_types = set(getattr(text, "layer_types", None) or ["full_attention"])
    if config is None or layer_types != {"full_attention"} or getattr(text, "sliding_window", None):
        return DynamicCache(config=config)
    return Cache(layer_class_to_replicate=GrowingLayer)


def _pad_right(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)


@dataclass
class Sampling:
    """Sample each token from softmax(logits / temperature), cut to the smallest set of tokens whose probability
    reaches `top_p` (1.0: no cut), drawing from `generator` (seed it for reproducible rollouts)."""

    temperature: float
    top_p: float = 1.0
    generator: torch.Generator | None = None

    def pick(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature <= 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            outside = sorted_probs.cumsum(dim=-1) - sorted_probs >= self.top_p  # mass before a token already enough
            sorted_probs = sorted_probs.masked_fill(outside, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)


class CachedSession:
    """One batch of conversations played turn by turn; see the module docstring."""

    min_shared_prefix = 16  # tokens: below this, the first turn just reads every row's prompt in full
    park_below = 0.5  # park finished rows when fewer than this fraction of the decode batch still generates

    def __init__(self, model: Any, tokenizer: Any, sampling: Sampling | None = None, logprobs: bool = False) -> None:
        self.model, self.tokenizer, self.sampling = model, tokenizer, sampling
        self.logprobs: dict[int, list[float]] | None = {} if logprobs else None  # of the last turn's tokens
        self.rows: list[int] = []  # task index of each batch row
        self.mask: torch.Tensor | None = None  # (rows, cached tokens): 1 where a token is part of the conversation
        self.cache: Cache | None = None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @torch.no_grad()
    def generate(self, segments: dict[int, str | list[int]],
                 max_new_tokens: int | dict[int, int]) -> dict[int, tuple[list[int], bool]]:
        """Append `segments` (task index -> text or token ids) and generate one reply per row of at most
        `max_new_tokens` (for all rows, or per task index): {index: (token ids, ended with end-of-turn)}.
        Rows not in `segments` leave the session."""
        if self.mask is not None:
            keep = [r for r, i in enumerate(self.rows) if i in segments]
            if len(keep) < len(self.rows):
                index = torch.tensor(keep, device=self.mask.device)
                self.mask = self.mask[index]
                self.cache.batch_select_indices(index)
            self.rows = [self.rows[r] for r in keep]
        else:
            self.rows = sorted(segments)
        encoded = [self._ids(segments[i]) for i in self.rows]
        if self.cache is None:
            encoded = self._prefill_shared_prefix(encoded)
        pad = self.tokenizer.pad_token_id
        width = max(len(e) for e in encoded)
        device = self.model.device
        block = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=device)
        block_mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
        self.mask = block_mask if self.mask is None else torch.cat([self.mask, block_mask], dim=1)
        logits = self._forward(block, self.mask, self.cache)
        limits = [max_new_tokens[i] if isinstance(max_new_tokens, dict) else max_new_tokens for i in self.rows]
        self._turn_logprobs: list[list[float]] = [[] for _ in self.rows]  # filled by _decode when recording
        generated, ended = self._decode(logits, limits)
        if self.logprobs is not None:
            self.logprobs = {i: self._turn_logprobs[r] for r, i in enumerate(self.rows)}
        return {i: (generated[r], ended[r]) for r, i in enumerate(self.rows)}

    def _ids(self, segment: str | list[int]) -> list[int]:
        if isinstance(segment, str):
            return self.tokenizer(segment, add_special_tokens=False)["input_ids"]
        return list(segment)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, cache: Cache) -> torch.Tensor:
        """Feed `ids` (the last columns of `mask`) into `cache`; the logits of each row's last position."""
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, -ids.shape[1]:]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                         use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :]

    def _decode(self, logits: torch.Tensor, limits: list[int]) -> tuple[list[list[int]], list[bool]]:
        """Decode every row from `logits` (greedy, or sampled) until its end-of-turn token or its limit; every
        generated token (the end-of-turn one included) ends up in the cache and the mask, so the next turn only
        feeds its new text. When the session records log-probabilities, each row's go to `_turn_logprobs`."""
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        n = len(self.rows)
        generated: list[list[int]] = [[] for _ in range(n)]
        ended = [False] * n
        done = [limit <= 0 for limit in limits]  # ended, or out of room
        live = list(range(n))  # batch rows in the decode batch (the cache's rows), in order
        cache, mask = self.cache, self.mask
        parked: list[tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]] = []
        while not all(done[r] for r in live):
            tokens = self.sampling.pick(logits) if self.sampling else logits.argmax(dim=-1)
            picked = self._token_logprobs(logits, tokens) if self.logprobs is not None else None
            fresh = [not done[r] for r in live]  # rows whose token this step is part of their reply
            for j, r in enumerate(live):
                if fresh[j]:
                    generated[r].append(int(tokens[j]))
                    if picked is not None:
                        self._turn_logprobs[r].append(picked[j])
                    ended[r] = generated[r][-1] == eos
                    done[r] = ended[r] or len(generated[r]) >= limits[r]
            fresh_mask = torch.tensor(fresh, device=mask.device)
            tokens = torch.where(fresh_mask, tokens, torch.full_like(tokens, pad))
            mask = torch.cat([mask, fresh_mask.long()[:, None]], dim=1)
            logits = self._forward(tokens[:, None], mask, cache)  # the last token too: the cache holds the reply
            going = [j for j, r in enumerate(live) if not done[r]]
            if not going:
                break
            if len(going) < self.park_below * len(live):
                stopped = [j for j in range(len(live)) if done[live[j]]]
                parked.append(([live[j] for j in stopped], _rows_of(cache, stopped), mask[stopped]))
                index = torch.tensor(going, device=mask.device)
                cache.batch_select_indices(index)
                mask, logits, live = mask[index], logits[index], [live[j] for j in going]
        self.mask = mask
        if parked:
            self._unpark(live, parked)
        return generated, ended

    def _token_logprobs(self, logits: torch.Tensor, tokens: torch.Tensor) -> list[float]:
        """Log-probability of each row's picked token: log softmax(logits / temperature), plain when greedy."""
        sampled = self.sampling is not None and self.sampling.temperature > 0
        scaled = logits.float() / self.sampling.temperature if sampled else logits.float()
        return torch.log_softmax(scaled, dim=-1).gather(-1, tokens[:, None]).squeeze(-1).tolist()

    def _unpark(self, live: list[int], parked: list) -> None:
        """Put the parked rows back: the whole batch in row order, shorter rows right-padded and masked."""
        length = self.mask.shape[1]
        order = list(live)
        keys = [[layer.keys] for layer in self.cache.layers]
        values = [[layer.values] for layer in self.cache.layers]
        masks = [self.mask]
        for rows, tensors, mask in parked:
            order += rows
            masks.append(_pad_right(mask, length, dim=1))
            for k, (key, value) in enumerate(tensors):
                keys[k].append(_pad_right(key, length, dim=2))
                values[k].append(_pad_right(value, length, dim=2))
        back = torch.tensor(sorted(range(len(order)), key=order.__getitem__), device=self.mask.device)
        self.mask = torch.cat(masks)[back]
        for layer, key, value in zip(self.cache.layers, keys, values):
            if isinstance(layer, GrowingLayer):
                layer._adopt(torch.cat(key)[back], torch.cat(value)[back])
            else:
                layer.keys, layer.values = torch.cat(key)[back], torch.cat(value)[back]

    def _prefill_shared_prefix(self, encoded: list[list[int]]) -> list[list[int]]:
        """Run the tokens every row starts with (the system prompt and tool list) once, copy their cache to all
        rows, and return what is left of each row (at least one token, so each row generates from its own text)."""
        self.cache = new_cache(self.model)
        shared = 0
        limit = min(len(e) for e in encoded) - 1
        while shared < limit and all(e[shared] == encoded[0][shared] for e in encoded):
            shared += 1
        if len(encoded) < 2 or shared < self.min_shared_prefix:
            return encoded
        prefix = torch.tensor([encoded[0][:shared]], device=self.model.device)
        self.model(input_ids=prefix, attention_mask=torch.ones_like(prefix), cache=self.cache,
                   use_cache=True, logits_to_keep=1)
        self.cache.batch_repeat_interleave(len(encoded))
        self.mask = torch.ones(len(encoded), shared, dtype=torch.long, device=self.model.device)
        return [e[shared:] for e in encoded]


def _rows_of(cache: Cache, rows: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the keys and values of batch `rows`, layer by layer."""
    index = torch.tensor(rows, device=cache.layers[0].keys.device)
    return [(layer.keys[index], layer.values[index]) for layer in cache.layers]
