"""cached_generation: multi-turn greedy generation with a kept, growing KV cache must generate exactly what the
model generates from each row's whole, unpadded conversation."""

import pytest
import torch

from agent_lightning.rollout.generation import CachedSession, GrowingLayer

SHARED = "[INST] You work in a workspace folder through the tools read_file, write_file and list_dir. "
FIRST = {0: SHARED + "Create the file a.txt [/INST]", 1: SHARED + "a much longer first request about many "
         "files, folders and their contents [/INST]", 2: SHARED + "hi [/INST]", 3: SHARED + "list b/ [/INST]"}
SECOND = {0: "[TOOL_RESULTS] wrote a.txt [/TOOL_RESULTS]", 2: "[TOOL_RESULTS] a longer tool result, with more "
          "words in it than the other one [/TOOL_RESULTS]", 3: "[TOOL_RESULTS] c.txt [/TOOL_RESULTS]"}


class _EndsOn:
    """The policy's tokenizer with another end-of-turn token (so a random tiny model ends its replies early)."""

    def __init__(self, tokenizer, eos):
        self._tokenizer, self.eos_token_id, self.pad_token_id = tokenizer, eos, tokenizer.pad_token_id

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)


def _alone(model, tokenizer, context, max_new_tokens, eos):
    """Greedy generation on one row's whole context, without padding or a kept cache."""
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([context]), attention_mask=torch.ones(1, len(context),
                             dtype=torch.long), max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
    return out[0, len(context):].tolist()


@pytest.mark.parametrize("early_end", [False, True])
def test_cached_turns_generate_what_the_model_generates_from_the_whole_context(tiny_policy, early_end):
    """Turn 1 (shared prefix read once, left-padded prompts) and turn 2 (one episode dropped, padded result
    blocks), with finished rows parked mid-turn and rejoining (early_end: a frequent token ends replies)."""
    model, tokenizer = tiny_policy
    model.eval()

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    assert len(encode(SHARED)) > CachedSession.min_shared_prefix  # the first turn reads the shared part once
    max_new, eos = 8, tokenizer.eos_token_id
    if early_end:  # end on row 0's second token: row 0 stops at step 2 while others go on
        eos = _alone(model, tokenizer, encode(FIRST[0]), 2, None)[1]
        tokenizer = _EndsOn(tokenizer, eos)
    session = CachedSession(model, tokenizer)
    session.park_below = 1.0 if early_end else session.park_below  # park every row as soon as it ends
    replies = [session.generate(FIRST, max_new), session.generate(SECOND, max_new)]
    assert set(replies[1]) == set(SECOND)
    assert session.cache.get_seq_length() == session.mask.shape[1] and session.mask.shape[0] == len(SECOND)
    if early_end:
        assert replies[0][0] == (replies[0][0][0][:2], True) and any(len(r[0]) > 2 for r in replies[0].values())
    for i in FIRST:
        assert replies[0][i][0] == _alone(model, tokenizer, encode(FIRST[i]), max_new, eos)
        assert replies[0][i][1] == (replies[0][i][0][-1] == eos)
    for i in SECOND:
        context = encode(FIRST[i]) + replies[0][i][0] + encode(SECOND[i])
        assert replies[1][i][0] == _alone(model, tokenizer, context, max_new, eos)


def test_the_growing_cache_layer_holds_what_concatenation_holds():
    """Writes into spare room, growth, row selection and repetition give the keys and values torch.cat would."""
    torch.manual_seed(0)
    layer, expected = GrowingLayer(), None
    for length in (5, 1, 300, 1):  # the 300-token block overflows the room
        keys, values = torch.randn(3, 2, length, 4), torch.randn(3, 2, length, 4)
        got = layer.update(keys, values)
        expected = (keys, values) if expected is None else tuple(torch.cat([e, n], dim=2)
                                                                  for e, n in zip(expected, (keys, values)))
        assert all(torch.equal(g, e) for g, e in zip(got, expected))
    layer.batch_select_indices(torch.tensor([2, 0]))
    layer.batch_repeat_interleave(2)
    rows = torch.tensor([2, 2, 0, 0])
    assert torch.equal(layer.keys, expected[0][rows]) and torch.equal(layer.values, expected[1][rows])
    assert layer.get_seq_length() == 307
    more = torch.randn(4, 2, 1, 4)
    assert torch.equal(layer.update(more, more)[0][:, :, -1:], more)


def test_sampling_draws_from_the_tempered_nucleus_reproducibly():
    from agent_lightning.rollout.generation import Sampling

    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().repeat(4000, 1)
    draws = Sampling(1.0, 0.7, torch.Generator().manual_seed(0)).pick(logits)
    counts = torch.bincount(draws, minlength=4) / len(draws)
    assert counts[2] == counts[3] == 0  # outside the smallest set reaching 0.7: never drawn
    assert abs(counts[0] - 0.5 / 0.8) < 0.03  # inside it: renormalized
    again = Sampling(1.0, 0.7, torch.Generator().manual_seed(0)).pick(logits)
    assert torch.equal(draws, again)
    cold = Sampling(0.05, 1.0, torch.Generator().manual_seed(0)).pick(logits)
    assert (cold == 0).float().mean() > 0.99
    hot = Sampling(1.0, 1.0, torch.Generator().manual_seed(0)).pick(logits)
    assert abs(torch.bincount(hot, minlength=4)[3] / len(hot) - 0.05) < 0.02


def test_sampled_turns_respect_each_rows_limit_and_the_seed(tiny_policy):
    """Per-row limits cap each reply; the same seed replays the same sample; the reply is a sample (not greedy)."""
    from agent_lightning.rollout.generation import Sampling

    model, tokenizer = tiny_policy
    model.eval()
    limits = {0: 3, 1: 12, 2: 0, 3: 7}

    def play(seed):
        session = CachedSession(model, tokenizer, Sampling(1.0, 1.0, torch.Generator().manual_seed(seed)))
        return session.generate(FIRST, limits)

    first, again, other = play(0), play(0), play(1)
    assert first == again and first != other
    assert all(len(first[i][0]) <= limits[i] for i in FIRST) and first[2] == ([], False)
    greedy = CachedSession(model, tokenizer).generate(FIRST, limits)
    assert greedy != first and all(len(greedy[i][0]) <= limits[i] for i in FIRST)
