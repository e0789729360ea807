"""Generators: the hf backend on a tiny random Llama, openai against a fake server, vllm against a fake engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_openai import FakeOpenAI

from text2sql_mlops.core.errors import UserError
from text2sql_mlops.generation import (
    GenerationRequest,
    SamplingParams,
    backend_options,
    backends_with,
    create_generator,
    generator_names,
    parse_option,
)
from text2sql_mlops.generation.chat import encode, render_completion, render_prompt

QUESTIONS = [
    "How many singers are there?",
    "List the names of all singers from France, ordered by age from the oldest to the youngest.",
    "Count concerts.",
    "What is the average age of the students in each country, and which stadiums host concerts in 2014 or 2015?",
    "hi",
    "Show the names of the stadiums.",
]


def chat(question: str) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "system", "content": "Write one SQL query."}, {"role": "user", "content": question}])


REQUESTS = [chat(question) for question in QUESTIONS]
GREEDY = SamplingParams(max_new_tokens=12)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models run on one thread


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def texts(results) -> list[list[str]]:
    return [[completion.text for completion in samples] for samples in results]


# --- chat rendering, shared with training ---------------------------------------------------


def test_render_prompt_ends_at_the_assistant_turn(tokenizer):
    prompt = render_prompt(tokenizer, REQUESTS[0].messages)
    assert prompt == "<|im_start|>system\nWrite one SQL query.<|im_end|>\n<|im_start|>user\nHow many singers are there?<|im_end|>\n<|im_start|>assistant\n"
    assert render_completion(tokenizer, "SELECT 1") == "SELECT 1<|im_end|>"
    ids = encode(tokenizer, prompt)
    assert ids.count(tokenizer.bos_token_id) == 3 and tokenizer.decode(ids) == prompt  # one per turn, none added


def test_render_prompt_without_chat_template_is_a_user_error(tokenizer):
    bare = SimpleNamespace(chat_template=None, name_or_path="base-model")
    with pytest.raises(UserError, match="no chat template"):
        render_prompt(bare, REQUESTS[0].messages)


def test_chat_and_remote_backends_and_every_backends_options_do_not_import_torch():
    code = (
        "import sys\n"
        "import text2sql_mlops.generation.chat, text2sql_mlops.generation.openai_compat, text2sql_mlops.generation.vllm_backend\n"
        "from text2sql_mlops.generation import backend_options, describe_options, generator_names\n"
        "assert all(backend_options(name) is not None for name in generator_names()) and describe_options()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- hf --------------------------------------------------------------------------------------


def hf(model: Path, **options):
    return create_generator("hf", model_path=str(model), progress=False, **options)


def test_hf_batches_give_the_same_greedy_output_in_the_callers_order(tiny_llama):
    one_at_a_time = [hf(tiny_llama, batch_size=1).generate([request], GREEDY)[0] for request in REQUESTS]
    batched = hf(tiny_llama, batch_size=4).generate(REQUESTS, GREEDY)  # 6 prompts: a full batch and a partial one
    assert texts(batched) == texts(one_at_a_time)
    left_padded = hf(tiny_llama, batch_size=4)
    left_padded.reuse_prefixes = False  # as for models with sliding-window layers
    assert texts(left_padded.generate(REQUESTS, GREEDY)) == texts(one_at_a_time)
    assert len({samples[0].text for samples in batched}) == len(REQUESTS)  # distinct, so the order check means something
    assert all(samples[0].num_tokens == GREEDY.max_new_tokens for samples in batched)  # no EOS from random weights


def test_hf_device_map_places_the_model_and_generates_the_same(tiny_llama):
    """--device_map (the reference's `auto` for a model sharded over GPUs) goes to from_pretrained."""
    placed = hf(tiny_llama, batch_size=4, device_map="cpu")
    assert placed.device == "cpu" and all(p.device.type == "cpu" for p in placed.model.parameters())
    assert texts(placed.generate(REQUESTS, GREEDY)) == texts(hf(tiny_llama, batch_size=4).generate(REQUESTS, GREEDY))


def test_batch_order_groups_shared_prefixes_longest_first():
    from text2sql_mlops.generation.hf import batch_order

    schema_a, schema_b = [1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]
    prompts = [schema_a + [20], schema_b + [21, 22], schema_a + [23, 24, 25], schema_b + [26], [30]]
    assert batch_order(prompts) == [2, 0, 1, 3, 4]


def test_hf_computes_a_shared_schema_once_per_batch(tiny_llama, tokenizer):
    schemas = [
        "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);",
        "CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, concert_name TEXT, year INTEGER, stadium_id INTEGER);",
    ]
    # Interleaved on purpose: the generator must group them by schema and restore this order.
    requests = [chat(f"{schema}\n\nQuestion: {question}") for question in QUESTIONS[:3] for schema in schemas]
    one_at_a_time = [hf(tiny_llama, batch_size=1).generate([request], GREEDY)[0] for request in requests]
    schema_tokens = min(len(encode(tokenizer, schema)) for schema in schemas)
    # batch_size 3: one batch per schema; 6: one batch holding both schemas, each computed once.
    for batch_size, prefixes_per_batch in [(3, [1, 1]), (6, [2])]:
        generator = hf(tiny_llama, batch_size=batch_size)
        prefixes = []  # per batch: the lengths of the prefixes it computed (each bucket of it reads some)
        generate_batch, compute_prefixes = generator._generate_batch, generator._prefix_cache

        def start_batch(prompts, params, generate_batch=generate_batch, prefixes=prefixes):
            prefixes.append([])
            return generate_batch(prompts, params)

        def prefix_cache(rows, width, computed, compute_prefixes=compute_prefixes, prefixes=prefixes):
            before = set(computed)
            cache = compute_prefixes(rows, width, computed)
            prefixes[-1].extend(len(prefix) for prefix in set(computed) - before)
            return cache

        generator._generate_batch, generator._prefix_cache = start_batch, prefix_cache
        assert texts(generator.generate(requests, GREEDY)) == texts(one_at_a_time)
        assert [len(lengths) for lengths in prefixes] == prefixes_per_batch  # each prefix once, whatever the buckets
        assert min(min(lengths) for lengths in prefixes) > schema_tokens


def test_length_buckets_bound_each_rows_padding():
    from text2sql_mlops.generation.hf import length_buckets

    assert length_buckets([10, 100, 80, 9, 60]) == [[1, 2], [4], [0, 3]]  # 80 pads 20% to 100; 60 would pad 40%
    assert length_buckets([5, 5, 4]) == [[0, 1, 2]]  # one bucket: the rows as given
    assert length_buckets([7]) == [[0]]


def test_hf_reads_repair_prompts_in_length_buckets_and_generates_the_same(tiny_llama, monkeypatch):
    """Repair prompts carry the last answer, a few tokens or a hundred: rows are read in
    buckets of similar length (far fewer padded positions than one read), then decoded as
    one batch, back in row order: the same greedy text as one prompt at a time, and the
    same samples, for the same seed, as one padded read."""
    from text2sql_mlops.generation import hf as hf_module

    schema = "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);"
    answers = ["SELECT 1", "SELECT name, country, age FROM singer WHERE age > 30 AND country = 'France' ORDER BY age DESC, name " * 3]
    requests = [GenerationRequest(messages=[{"role": "system", "content": schema}, {"role": "user", "content": question},
                                            {"role": "assistant", "content": answers[i % 2]},
                                            {"role": "user", "content": "The query failed: no such column."}])
                for i, question in enumerate(QUESTIONS)]
    one_at_a_time = [hf(tiny_llama, batch_size=1).generate([request], GREEDY)[0] for request in requests]
    generator = hf(tiny_llama, batch_size=8)
    reads = []  # (rows, own width) of every prefill forward
    prefill = generator._prefill
    generator._prefill = lambda rows, computed: reads.append((len(rows), max(len(own) for _, own in rows))) or prefill(rows, computed)
    assert texts(generator.generate(requests, GREEDY)) == texts(one_at_a_time)
    assert len(reads) >= 2 and sum(n for n, _ in reads) == len(requests)
    widest = max(width for _, width in reads)
    assert sum(n * width for n, width in reads) < 0.8 * len(requests) * widest

    sampling = SamplingParams(num_samples=2, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=3)
    bucketed = texts(generator.generate(requests, sampling))
    monkeypatch.setattr(hf_module, "length_buckets", lambda lengths: [list(range(len(lengths)))])
    reads.clear()
    assert texts(generator.generate(requests, sampling)) == bucketed
    assert len(reads) == 1


def test_the_transformers_cache_api_the_hf_backend_relies_on(tiny_llama, tokenizer):
    """What hf.py does with transformers' cache, step by step: a cache built from the config
    (its layers' is_sliding / is_linear decide prefix reuse), filled by a forward that takes it
    under the signature's keyword, read per layer as [batch, kv heads, positions, head_dim]
    keys and values, assembled left-padded with update(), cut down with batch_select_indices,
    then continued: the next token's logits equal a plain forward over the whole sequence.
    Both pins run it: transformers 5.24 (CPU, `cache=`) and the GPU set's 5.20
    (`past_key_values=`; `make test-gpu-pin`)."""
    import torch
    import transformers
    from packaging.version import Version
    from transformers import AutoModelForCausalLM, DynamicCache

    from text2sql_mlops.generation.hf import cache_keyword

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    config = model.config
    keyword = cache_keyword(model)
    assert keyword == ("cache" if Version(transformers.__version__) >= Version("5.24") else "past_key_values")
    layers = config.num_hidden_layers
    assert len(DynamicCache(config=config).layers) == layers
    assert list(DynamicCache(config=config).is_sliding) == [False] * layers
    assert list(DynamicCache(config=config).is_linear) == [False] * layers

    long, short = encode(tokenizer, QUESTIONS[3]), encode(tokenizer, "Count concerts.")
    assert len(long) > len(short) + 2
    head_dim = config.hidden_size // config.num_attention_heads
    with torch.inference_mode():
        prefixes = {}
        for name, ids in (("long", long), ("short", short)):
            cache = prefixes[name] = DynamicCache(config=config)
            model(input_ids=torch.tensor([ids[:-1]]), use_cache=True, logits_to_keep=1, **{keyword: cache})
            assert cache.get_seq_length() == len(ids) - 1  # the forward filled the cache it was given
            assert cache.layers[0].keys.shape == cache.layers[0].values.shape == (1, config.num_key_value_heads, len(ids) - 1, head_dim)
        # Rows [long, short], the short prefix left-padded to the long one's width, as _prefix_cache builds them.
        width = len(long) - 1
        merged = DynamicCache(config=config)
        for layer in range(layers):
            pads = (0, 0, width - (len(short) - 1), 0)
            keys = torch.cat([prefixes["long"].layers[layer].keys, torch.nn.functional.pad(prefixes["short"].layers[layer].keys, pads)])
            values = torch.cat([prefixes["long"].layers[layer].values, torch.nn.functional.pad(prefixes["short"].layers[layer].values, pads)])
            merged.update(keys, values, layer)
        assert merged.get_seq_length() == width and merged.layers[0].keys.shape[0] == 2
        merged.batch_select_indices(torch.tensor([1]))  # the long row finished: only the short one goes on
        assert merged.layers[0].keys.shape[0] == 1
        mask = torch.tensor([[0] * (width - (len(short) - 1)) + [1] * len(short)])
        continued = model(input_ids=torch.tensor([short[-1:]]), attention_mask=mask, position_ids=torch.tensor([[len(short) - 1]]),
                          use_cache=True, **{keyword: merged}).logits[:, -1]
        plain = model(input_ids=torch.tensor([short])).logits[:, -1]
    assert merged.get_seq_length() == width + 1
    torch.testing.assert_close(continued, plain, atol=1e-5, rtol=1e-4)


def test_roomy_cache_layer_continues_exactly_as_the_concatenating_one(tiny_llama, tokenizer):
    """hf.py's RoomyLayer writes decoding's new positions into reserved room (and grows when
    that runs out) instead of concatenating: every step's logits are the same to the bit as
    with transformers' DynamicLayer, also after rows leave the batch."""
    import torch
    from transformers import AutoModelForCausalLM, DynamicCache

    from text2sql_mlops.generation.hf import RoomyLayer, cache_keyword, with_room

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    keyword = cache_keyword(model)
    prompt = torch.tensor([encode(tokenizer, QUESTIONS[1])] * 3)

    def steps(room: int | None) -> list[torch.Tensor]:
        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            logits = model(input_ids=prompt, use_cache=True, **{keyword: cache}).logits[:, -1]
            if room is not None:
                cache = with_room(cache, room)
                assert all(isinstance(layer, RoomyLayer) for layer in cache.layers)
            seen, position = [logits], prompt.shape[1]
            for step in range(6):
                if step == 2:  # a row leaves the batch
                    cache.batch_select_indices(torch.tensor([0, 2]))
                    logits = logits[[0, 2]]
                tokens = logits.argmax(-1)[:, None]
                logits = model(input_ids=tokens, position_ids=torch.full_like(tokens, position), use_cache=True,
                               **{keyword: cache}).logits[:, -1]
                seen.append(logits)
                position += 1
        assert cache.get_seq_length() == prompt.shape[1] + 6
        return seen

    concatenating = steps(None)
    for room in (6, 2):  # 2: the room runs out after two steps and grows
        assert all(torch.equal(a, b) for a, b in zip(steps(room), concatenating, strict=True))


def test_hf_repair_turn_reads_only_the_tokens_after_the_kept_answer(tiny_llama, tokenizer):
    """A repair prompt continues the last call's prompt and answer. The generator keeps each
    finished row's cache (hf_turns.py) and the next call reads only what follows it: the same
    text as a generator that keeps nothing. Some rows stop early and leave the batch while the
    others decode on, so both places a row's cache is kept (leaving, and at the end) are covered."""
    import torch

    prompts = [encode(tokenizer, render_prompt(tokenizer, request.messages)) for request in REQUESTS]
    params = SamplingParams(max_new_tokens=10)
    probe, seen = hf(tiny_llama, batch_size=8, turn_cache_mb=0), []
    completions = probe._completions
    probe._completions = lambda generated, params: seen.extend(generated) or completions(generated, params)
    probe._generate_batch(prompts, params)
    # Stop tokens that the rows reach at different steps: their 3rd and 7th tokens (where not earlier).
    stops = sorted({seen[0][2], seen[1][6]})

    def generator(turn_cache_mb: int):
        made = hf(tiny_llama, batch_size=8, turn_cache_mb=turn_cache_mb)
        made.stop_ids, made.stop_tensor = stops, torch.tensor(stops)
        return made

    keeping = generator(64)
    first = keeping._generate_batch(prompts, params)
    kept = sorted(keeping.turns.rows.values(), key=lambda row: prompts.index(list(row.tokens[: row.prompt_length])))
    answered = [len(samples[0].text) for samples in first]
    assert len(kept) == len(prompts) and len({len(row.tokens) - row.prompt_length for row in kept}) > 1, answered
    feedback = encode(tokenizer, "The query failed: no such column: name.")
    repairs = [list(row.tokens) + feedback for row in kept]

    def reading(made) -> list[int]:
        """The tokens each forward pass with more than one position reads (the prompts' reading)."""
        reads, forward = [], made.model.forward

        def counted(*args, **kwargs):
            ids = kwargs["input_ids"]
            if ids.shape[1] > 1 or len(ids) == 1:
                reads.append(ids.shape[0] * ids.shape[1])
            return forward(*args, **kwargs)

        made.model.forward = counted
        return reads

    plain = generator(0)
    kept_reads, plain_reads = reading(keeping), reading(plain)
    assert texts(keeping._generate_batch(repairs, params)) == texts(plain._generate_batch(repairs, params))
    # The repair prompts share no schema: each is read alone up to its last token (counted here),
    # then the last tokens together (one position: not counted, as decoding's steps are not).
    assert sum(plain_reads) == sum(map(len, repairs)) - len(repairs)
    assert sum(kept_reads) == len(repairs) * (len(feedback) - 1)  # only the feedback
    assert len(keeping.turns) == len(repairs)  # the continued rows went, the repairs' own answers are kept


def test_turn_cache_keeps_the_newest_rows_within_its_memory_and_a_shared_base_once():
    import torch
    from transformers import DynamicCache

    from text2sql_mlops.generation.hf_turns import TurnCache

    def states(positions: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.full((1, 2, positions, 4), float(positions)), torch.zeros(1, 2, positions, 4))]  # 64 bytes a position

    base = DynamicCache()
    base.update(*states(3)[0], 0)  # 192 bytes, shared by every row below
    turns = TurnCache(limit_bytes=192 + 3 * 128)
    for n in range(4):  # prompts [n, 7, 7, 7] and one generated token each, 2 positions after the base
        turns.add([n, 7, 7, 7, 9], 4, base, 3, states(2))
    assert len(turns) == 3 and turns.size == 192 + 3 * 128  # the oldest row went; the base counts once
    assert turns.match([0, 7, 7, 7, 9, 5]) == (None, 0)
    row, length = turns.match([3, 7, 7, 7, 9, 5])
    assert length == 5 and row.tokens == (3, 7, 7, 7, 9)
    assert turns.match([3, 7, 7, 7, 9])[1] == 4  # the prompt's last token stays to be read
    assert turns.match([3, 7, 7, 8])[0] is None  # it must continue a whole kept prompt
    cache = TurnCache.cache(row, 4, config=None)
    assert cache.layers[0].keys.shape[-2] == 4 and torch.equal(cache.layers[0].keys[..., 3:, :], row.own[0][0][..., :1, :])
    turns.new_call()
    turns.add([4, 7, 7, 7, 9], 4, base, 3, states(2))  # the next call's row (the oldest goes, for memory)
    turns.new_call()
    assert [kept.tokens[0] for kept in turns.rows.values()] == [2, 3, 4]
    turns.new_call()  # the first call's rows were not continued within two calls
    assert [kept.tokens[0] for kept in turns.rows.values()] == [4]
    turns.new_call()
    assert turns.size == 0 and not turns.base_users and not turns.by_prompt


def test_sampling_sorts_only_the_top_candidates_and_draws_the_same_tokens(monkeypatch):
    """next_tokens skips sorting the whole vocabulary when every row's nucleus lies in its top
    candidates: the same seed draws the same tokens as a full sort, peaked rows or flat ones
    (which take the full sort)."""
    import torch

    from text2sql_mlops.generation import hf as hf_module

    def full_sort(logits, params):
        probs = torch.softmax(logits.float() / params.temperature, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        sorted_probs[sorted_probs.cumsum(dim=-1) - sorted_probs >= params.top_p] = 0
        return order.gather(-1, torch.multinomial(sorted_probs, 1)).squeeze(-1)

    monkeypatch.setattr(hf_module, "NUCLEUS_CANDIDATES", 64)
    sorts = []
    monkeypatch.setattr(torch.Tensor, "sort", lambda self, *a, **k: sorts.append(self.shape) or torch.sort(self, *a, **k))
    params = SamplingParams(num_samples=2, temperature=0.8, top_p=0.95, seed=0)
    peaked = torch.randn(16, 5000, generator=torch.Generator().manual_seed(1)) * 8  # a trained model's few likely tokens
    flat = torch.randn(16, 5000, generator=torch.Generator().manual_seed(2)) * 0.1  # a nucleus of thousands of tokens
    for logits, sorted_rows in ((peaked, []), (flat, [(16, 5000)])):
        drawn = []
        for sample in (hf_module.next_tokens, full_sort):
            torch.manual_seed(3)
            drawn.append([sample(logits, params) for _ in range(20)])
        assert all(torch.equal(a, b) for a, b in zip(*drawn))
        assert len({tuple(t.tolist()) for t in drawn[0]}) > 1  # really sampled
        assert sorts[: len(sorted_rows)] == sorted_rows
        sorts.clear()


def test_hf_greedy_samples_are_copies(tiny_llama):
    (samples,) = hf(tiny_llama).generate(REQUESTS[:1], SamplingParams(num_samples=3, max_new_tokens=6))
    assert len(samples) == 3 and len({s.text for s in samples}) == 1 and samples[0] is not samples[1]


def test_hf_sampling_is_seeded(tiny_llama):
    generator = hf(tiny_llama, batch_size=4)
    params = SamplingParams(num_samples=3, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=7)
    first = generator.generate(REQUESTS, params)
    assert [len(samples) for samples in first] == [3] * len(REQUESTS)
    assert all(len({s.text for s in samples}) > 1 for samples in first)
    assert texts(generator.generate(REQUESTS, params)) == texts(first)
    assert texts(generator.generate(REQUESTS, SamplingParams(num_samples=3, temperature=1.0, max_new_tokens=8, seed=8))) != texts(first)


def test_hf_names_a_damaged_model_or_a_mismatched_adapter_in_one_line(tiny_llama, tiny_lora, tmp_path):
    import shutil

    from tiny_model import build_tiny_llama

    damaged = shutil.copytree(tiny_lora, tmp_path / "damaged_adapter")
    weights = damaged / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a copy cut short
    with pytest.raises(UserError, match=r"cannot load the LoRA adapter from .*damaged_adapter: its weights file is damaged"):
        hf(tiny_llama, adapter_path=str(damaged))
    model = shutil.copytree(tiny_llama, tmp_path / "damaged_model")
    (model / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match=r"cannot load the model from .*damaged_model"):
        hf(model)
    other = build_tiny_llama(tmp_path / "other_base", intermediate_size=96)
    with pytest.raises(UserError, match=rf"the LoRA adapter at {tiny_lora} does not fit the base model .*other_base .*it was trained on {tiny_llama}"):
        hf(other, adapter_path=str(tiny_lora))


def test_hf_generate_decoder_gives_the_loops_greedy_tokens(tiny_llama, tmp_path):
    """decoder=generate (transformers' generate, for GPUs): the loop's greedy answers, in the
    caller's order, whatever sampling defaults the model folder declares (here top_k=1 and a
    repetition penalty, which would change them); seeded samples, num_samples per prompt."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_llama, folder)
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": True, "top_k": 1, "temperature": 0.3,
                                                               "repetition_penalty": 1.5}))
    loop = hf(folder, batch_size=4).generate(REQUESTS, GREEDY)
    generate = hf(folder, batch_size=4, decoder="generate")
    assert texts(generate.generate(REQUESTS, GREEDY)) == texts(loop)
    assert [s[0].num_tokens for s in generate.generate(REQUESTS, GREEDY)] == [s[0].num_tokens for s in loop]
    params = SamplingParams(num_samples=3, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=7)
    sampled = generate.generate(REQUESTS, params)
    assert [len(samples) for samples in sampled] == [3] * len(REQUESTS)
    assert all(len({s.text for s in samples}) > 1 for samples in sampled)  # top_k=1 from the folder would make them one
    assert texts(generate.generate(REQUESTS, params)) == texts(sampled)
    with pytest.raises(UserError, match="unknown decoder 'beam'; choose loop or generate"):
        hf(folder, decoder="beam")


def test_hf_generate_decoder_stops_where_the_loop_does(tiny_llama, tokenizer):
    """generate pads a finished row to the batch's end; the answer is cut after its stop token,
    or after the fence that closes its block, as the loop cuts it."""
    generator = hf(tiny_llama, decoder="generate")
    stop = generator.stop_ids[0]
    block = encode(tokenizer, "```sql\nSELECT 1\n```")
    assert generator._answer_ids([5, 6, stop, stop, stop]) == [5, 6, stop]
    assert generator._answer_ids([*block, *encode(tokenizer, " more"), stop]) == block
    assert generator._answer_ids([5, 6, 7]) == [5, 6, 7]


def test_hf_loads_a_lora_adapter(tiny_llama, tiny_lora):
    base = hf(tiny_llama).generate(REQUESTS, GREEDY)
    adapted = hf(tiny_llama, adapter_path=str(tiny_lora)).generate(REQUESTS, GREEDY)
    assert texts(adapted) != texts(base)


def run_scripted(tiny_llama, tokenizer, letters: str, first_tokens: list[int], max_new_tokens: int):
    """Generate for one-letter prompts with a scripted model: each row's first token depends on
    its prompt's letter (``first_tokens``), every later one on the token before (5 6 eos; 7 eos;
    8 9 10 11 ...). A stopped row still in the batch is fed its stop token, then the pad
    token; what follows them (eos) is never read. Returns the results and how many rows each forward pass computed."""
    import torch

    eos = tokenizer.eos_token_id
    first = {encode(tokenizer, letter)[0]: token for letter, token in zip(letters, first_tokens, strict=True)}
    script = {5: 6, 6: eos, 7: eos, 8: 9, 9: 10, 10: 11, 11: 12}
    generator = hf(tiny_llama, batch_size=len(letters), turn_cache_mb=0)
    generator.reuse_prefixes = False  # the scripted model keeps no cache
    rows_per_step = []

    class Scripted(torch.nn.Module):
        config = generator.model.config

        def forward(self, input_ids, **_):
            rows_per_step.append(len(input_ids))
            if input_ids.shape[1] > 1:  # the prompts: the first token depends on the letter each holds
                following = [next(first[token] for token in row if token in first) for row in input_ids.tolist()]
            else:
                following = [eos if token in (eos, generator.pad_id) else script[token] for token in input_ids[:, -1].tolist()]
            return SimpleNamespace(logits=torch.nn.functional.one_hot(torch.tensor(following), len(tokenizer)).float()[:, None])

    generator.model = Scripted()
    requests = [GenerationRequest([{"role": "user", "content": letter}]) for letter in letters]
    return generator.generate(requests, SamplingParams(max_new_tokens=max_new_tokens)), rows_per_step


def test_hf_rows_leave_the_batch_at_their_stop_token(tiny_llama, tokenizer):
    """Row 0 stops after 3 tokens, row 1 after 2 and row 2 runs to max_new_tokens."""
    results, rows_per_step = run_scripted(tiny_llama, tokenizer, "abc", [5, 7, 8], max_new_tokens=4)
    assert [(samples[0].text, samples[0].num_tokens) for samples in results] == [
        (tokenizer.decode([5, 6]), 3),
        (tokenizer.decode([7]), 2),
        (tokenizer.decode([8, 9, 10, 11]), 4),
    ]
    assert rows_per_step == [3, 3, 2, 1]


def test_hf_stopped_rows_leave_the_batch_a_quarter_at_a_time(tiny_llama, tokenizer):
    """Taking rows out of the batch copies the whole cache, so stopped rows wait until they are
    a quarter of it: one of five stops, the batch stays at five (its row computed, its output
    ignored); a second, and both leave."""
    results, rows_per_step = run_scripted(tiny_llama, tokenizer, "abcde", [5, 7, 8, 8, 8], max_new_tokens=4)
    assert [(samples[0].text, samples[0].num_tokens) for samples in results] == [
        (tokenizer.decode([5, 6]), 3),
        (tokenizer.decode([7]), 2),
        *[(tokenizer.decode([8, 9, 10, 11]), 4)] * 3,
    ]
    assert rows_per_step == [5, 5, 5, 3]


def test_hf_rows_stop_once_their_answer_block_closes(tiny_llama, tokenizer):
    """A scripted model that answers in a fenced block and then chats on: the row stops at the
    closing fence (the extracted SQL is the same), the other runs to max_new_tokens."""
    import torch

    from text2sql_mlops.prompts import extract_sql

    answer = encode(tokenizer, "```sql\nSELECT 1\n```\nThis query selects one.")
    chatter = encode(tokenizer, " and so on and so on and so on and so on")
    generator = hf(tiny_llama, batch_size=2, turn_cache_mb=0)
    generator.reuse_prefixes = False  # the scripted model keeps no cache
    streams = {}

    class Scripted(torch.nn.Module):
        config = generator.model.config

        def forward(self, input_ids, **_):
            if input_ids.shape[1] > 1:
                streams.clear()
                streams.update({row: iter(answer if i == 0 else chatter) for i, row in enumerate(range(len(input_ids)))})
                self.live = list(range(len(input_ids)))
            else:
                self.live = self.live[: len(input_ids)] if len(input_ids) == len(self.live) else [1]
            following = [next(streams[row]) for row in self.live]
            return SimpleNamespace(logits=torch.nn.functional.one_hot(torch.tensor(following), len(tokenizer)).float()[:, None])

    generator.model = Scripted()
    requests = [GenerationRequest([{"role": "user", "content": text}]) for text in ("a", "b")]
    results = generator.generate(requests, SamplingParams(max_new_tokens=12))
    first, second = results[0][0], results[1][0]
    assert first.text.endswith("```") and "This query" not in first.text and extract_sql(first.text) == "SELECT 1"
    assert second.num_tokens == 12


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs model_path"),
        ({"model_path": "no/such/folder"}, "no/such/folder has no config.json; run `text2sql-mlops model prepare"),
        ({"model_path": ".", "temperature": 0.5}, "unknown option"),
    ],
)
def test_hf_option_errors(options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        create_generator("hf", **options)


def test_a_folder_that_is_not_a_model_is_named_for_what_it_is(tiny_lora, demo_dataset, tmp_path):
    """Only a missing or empty folder gets the advice to prepare a model there; a dataset or
    a LoRA adapter given as the model is named as such (hf, vllm and training share the check)."""
    from text2sql_mlops.generation.adapters import check_model_folder

    with pytest.raises(UserError, match=r"model folder not found: .*nowhere has no config.json; run `text2sql-mlops model prepare"):
        check_model_folder(tmp_path / "nowhere")
    with pytest.raises(UserError, match=rf"^{demo_dataset} is not a model folder \(it has no config.json\); give a Hugging Face"):
        hf(demo_dataset)
    with pytest.raises(UserError, match=rf"^{tiny_lora} is a LoRA adapter, not a model folder; give its base model here"):
        hf(tiny_lora)


def test_hf_missing_adapter_and_bad_dtype(tiny_llama, tmp_path):
    with pytest.raises(UserError, match="has no adapter_config.json"):
        hf(tiny_llama, adapter_path=str(tmp_path))
    with pytest.raises(UserError, match=r"turn_cache_mb must be 0 \(off\) or more, got -1"):
        hf(tiny_llama, turn_cache_mb=-1)
    with pytest.raises(UserError, match="unknown dtype 'fp8'"):
        hf(tiny_llama, dtype="fp8")


# --- openai ----------------------------------------------------------------------------------


def openai(server: FakeOpenAI, **options):
    return create_generator("openai", base_url=server.base_url, model="tiny", backoff_s=0.01, **options)


def test_openai_retries_keeps_order_and_bounds_concurrency(fake_openai, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = fake_openai()
    questions = [f"question {i}" for i in range(12)]
    results = openai(server, max_concurrency=3).generate([chat(q) for q in questions], GREEDY)
    assert [samples[0].text for samples in results] == [f"{q} | seed 0 #0" for q in questions]
    assert all(samples[0].num_tokens == 5 for samples in results)
    assert len(server.bodies) == len(questions) + 1  # the failed first request, retried
    assert 2 <= server.max_in_flight <= 3
    assert server.auth == [None] * len(server.bodies)  # no key in the environment: none sent
    body = server.bodies[-1]
    assert (body["n"], body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (1, 0.0, 1.0, 12, 0)


def test_openai_samples_with_n_and_sends_the_key(fake_openai, monkeypatch):
    monkeypatch.setenv("TINY_KEY", "secret")
    server = fake_openai(fail_first=False)
    params = SamplingParams(num_samples=3, temperature=0.8, top_p=0.9, max_new_tokens=32, seed=5)
    (samples,) = openai(server, api_key_env="TINY_KEY").generate([chat("q")], params)
    assert [s.text for s in samples] == ["q | seed 5 #0", "q | seed 5 #1", "q | seed 5 #2"]
    assert [s.num_tokens for s in samples] == [5, 5, 5]
    assert len(server.bodies) == 1 and server.auth == ["Bearer secret"]


def test_openai_asks_again_when_the_server_ignores_n(fake_openai):
    server = fake_openai(fail_first=False, ignore_n=True)
    (samples,) = openai(server).generate([chat("q")], SamplingParams(num_samples=3, temperature=1.0, seed=5))
    assert [s.text for s in samples] == ["q | seed 5 #0", "q | seed 6 #0", "q | seed 7 #0"]
    assert [body["n"] for body in server.bodies] == [3, 2, 1]


def test_openai_client_errors_fail_at_once(fake_openai):
    server = fake_openai(fail_first=False)
    generator = create_generator("openai", base_url=server.base_url, model="missing", backoff_s=0.01)
    with pytest.raises(UserError, match="HTTP 404: .*model missing not found"):
        generator.generate([chat("q")], GREEDY)
    assert len(server.bodies) == 1


def test_openai_gives_up_on_a_closed_port():
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    generator = create_generator("openai", base_url=f"http://127.0.0.1:{port}/v1", model="tiny", max_retries=2, backoff_s=0.01)
    with pytest.raises(UserError, match="no answer after 3 attempts .*is the server running"):
        generator.generate([chat("q")], GREEDY)


def test_openai_option_errors():
    with pytest.raises(UserError, match="needs base_url"):
        create_generator("openai", model="tiny")
    with pytest.raises(UserError, match="unknown option.*batch_size"):
        create_generator("openai", base_url="http://127.0.0.1:1/v1", model="tiny", batch_size=4)


# --- vllm ------------------------------------------------------------------------------------


class FakeLLM:
    """Stands in for ``vllm.LLM``: records its options and calls, answers with the prompt length."""

    def __init__(self, tokenizer, **options):
        self.tokenizer, self.options, self.calls = tokenizer, options, []

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, sampling, lora_request=None, use_tqdm=True):
        self.calls.append(SimpleNamespace(prompts=prompts, sampling=sampling, lora_request=lora_request))
        return [
            SimpleNamespace(outputs=[SimpleNamespace(text=f"{len(p['prompt_token_ids'])} tokens #{i}", token_ids=[1] * (i + 2)) for i in range(sampling["n"])])
            for p in prompts
        ]


@pytest.fixture
def fake_vllm(tokenizer, monkeypatch):
    """vLLM's entry points replaced by fakes for any VLLMGenerator this test creates; the engines it made."""
    from text2sql_mlops.generation import vllm_backend

    engines = []

    def make_llm(**options):
        engines.append(FakeLLM(tokenizer, **options))
        return engines[-1]

    api = vllm_backend.VllmApi(LLM=make_llm, SamplingParams=dict, LoRARequest=lambda *args: ("lora", *args))
    monkeypatch.setattr(vllm_backend, "load_vllm_api", lambda: api)
    return engines


def test_vllm_passes_rendered_token_ids_and_sampling(tiny_llama, tokenizer, fake_vllm):
    engines = fake_vllm
    generator = create_generator("vllm", model_path=str(tiny_llama), progress=False)
    params = SamplingParams(num_samples=2, temperature=0.7, top_p=0.9, max_new_tokens=64, seed=3)
    results = generator.generate(REQUESTS[:2], params)
    (engine,) = engines
    assert engine.options == {"model": str(tiny_llama), "dtype": "bfloat16", "gpu_memory_utilization": 0.9}
    (call,) = engine.calls
    expected = [encode(tokenizer, render_prompt(tokenizer, r.messages)) for r in REQUESTS[:2]]
    assert [p["prompt_token_ids"] for p in call.prompts] == expected
    assert call.sampling == {"n": 2, "temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "seed": 3} and call.lora_request is None
    assert texts(results) == [[f"{len(ids)} tokens #0", f"{len(ids)} tokens #1"] for ids in expected]
    assert [s.num_tokens for s in results[0]] == [2, 3]


def test_vllm_greedy_asks_once_and_copies(tiny_llama, fake_vllm):
    engines = fake_vllm
    results = create_generator("vllm", model_path=str(tiny_llama)).generate(REQUESTS[:1], SamplingParams(num_samples=3))
    assert engines[0].calls[0].sampling["n"] == 1 and engines[0].calls[0].sampling["temperature"] == 0.0
    assert len(results[0]) == 3 and len({s.text for s in results[0]}) == 1


def test_vllm_serves_a_lora_adapter(tiny_llama, tiny_lora, fake_vllm):
    engines = fake_vllm
    generator = create_generator("vllm", model_path=str(tiny_llama), adapter_path=str(tiny_lora))
    generator.generate(REQUESTS[:1], GREEDY)
    assert engines[0].options["enable_lora"] is True and engines[0].options["max_lora_rank"] == 8  # r=4 rounded up
    assert engines[0].calls[0].lora_request == ("lora", "adapter", 1, str(tiny_lora))


def test_vllm_option_errors(tiny_llama, tmp_path, fake_vllm):
    with pytest.raises(UserError, match="model folder not found"):
        create_generator("vllm", model_path=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="has no adapter_config.json"):
        create_generator("vllm", model_path=str(tiny_llama), adapter_path=str(tmp_path))
    with pytest.raises(UserError, match="unknown option.*batch_size"):
        create_generator("vllm", model_path=str(tiny_llama), batch_size=8)


# --- registry --------------------------------------------------------------------------------


def test_registry_lists_every_backend_and_rejects_unknown_names():
    assert {"mock", "hf", "openai", "vllm"} <= set(generator_names())
    with pytest.raises(UserError, match="unknown generator 'gpt'; choose one of: .*hf.*openai.*vllm"):
        create_generator("gpt")


def test_every_backend_declares_typed_options_with_help():
    for name in generator_names():
        for option, declared in backend_options(name).items():
            assert declared.metadata.get("help"), (name, option)
    assert {"batch_size", "model_path", "adapter_path"} <= set(backend_options("hf"))
    assert "batch_size" not in backend_options("openai") and "batch_size" not in backend_options("vllm")
    assert backend_options("mock") == {}
    assert backends_with("adapter_path") == ["hf", "vllm"]


@pytest.mark.parametrize(
    ("name", "item", "parsed"),
    [
        ("hf", "batch_size=8", ("batch_size", 8)),
        ("hf", "progress=false", ("progress", False)),
        ("hf", "device_map=none", ("device_map", None)),
        ("hf", "dtype=float32", ("dtype", "float32")),
        ("openai", "backoff_s=0.5", ("backoff_s", 0.5)),
        ("vllm", "max_model_len=4096", ("max_model_len", 4096)),
    ],
)
def test_generator_options_are_parsed_by_their_declared_type(name, item, parsed):
    assert parse_option(name, item) == parsed


@pytest.mark.parametrize(
    ("name", "item", "message"),
    [
        ("openai", "batch_size=4", "--generator_option batch_size: the openai generator has no such option; its options: base_url, model,"),
        ("mock", "seed=1", "the mock generator has no such option; its options: none"),
        ("hf", "batch_size=many", "the hf generator's batch_size is a int"),
        ("hf", "progress=maybe", "the hf generator's progress is a bool"),
        ("hf", "batch_size", "must look like KEY=VALUE"),
    ],
)
def test_generator_option_errors_name_the_backends_options(name, item, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        parse_option(name, item)


# --- one profile, every backend --------------------------------------------------------------


def profile_generation_flags(generator: str) -> list[str]:
    """profiles/spider.yaml's `generation:` section as dvc.yaml passes it (`${generation}`), with
    its generator replaced: how `dvc exp run -S generation.generator=...` switches backends."""
    import yaml

    section = yaml.safe_load((Path(__file__).parents[1] / "profiles" / "spider.yaml").read_text())["generation"]
    assert "batch_size" in section  # an hf option the other backends lack: the point of this test
    return [arg for key, value in {**section, "generator": generator}.items() for arg in (f"--{key}", str(value))]


def test_one_profile_runs_every_backend(spider_layout, tiny_llama, fake_openai, fake_vllm, tmp_path, capsys, monkeypatch):
    """The spider profile's generation section drives each backend: a backend gets the options
    it declares (batch_size reaches hf), the others note once on stderr what they ignore."""
    import text2sql_mlops.rollout.command as rollout_command
    from text2sql_mlops.cli import main as cli_main

    created = {}
    real_create = rollout_command.create_generator

    def recording_create(name, **options):
        created[name] = options
        return real_create(name, **options)

    monkeypatch.setattr(rollout_command, "create_generator", recording_create)
    (spider_layout / "tables.json").unlink()  # the fixture's is a stub; the SQLite file has the schema
    server = fake_openai(fail_first=False)
    model = ["--model_path", str(tiny_llama)]
    backend_flags = {
        "mock": [],
        "hf": model,
        "vllm": model,
        # --model_path too, as dvc.yaml passes it to every backend
        "openai": [*model, "--base_url", server.base_url, "--model_name", "tiny", "--generator_option", "backoff_s=0.01"],
    }
    assert sorted(backend_flags) == generator_names()
    for name, flags in backend_flags.items():
        argv = ["rollout", "--dataset_path", str(spider_layout), "--split", "train", "--output_dir", str(tmp_path / name),
                "--max_turns", "2", "--no_progress", *profile_generation_flags(name), *flags]
        assert cli_main(argv) == 0, name
        captured = capsys.readouterr()
        assert json.loads(captured.out)["examples"] == 2, name
        notes = [line for line in captured.err.splitlines() if "has no option for" in line]
        ignored = {"hf": [], "mock": ["--batch_size"], "vllm": ["--batch_size"], "openai": ["--batch_size", "--model_path"]}[name]
        assert notes == ([f"rollout: note: the {name} generator has no option for {', '.join(ignored)}; ignored"] if ignored else []), name
    assert created["hf"] == {"model_path": str(tiny_llama), "batch_size": 64, "progress": False}
    assert created["vllm"] == {"model_path": str(tiny_llama), "progress": False}
    assert created["openai"] == {"model": "tiny", "base_url": server.base_url, "backoff_s": 0.01}
    assert created["mock"] == {}
    assert len(fake_vllm[0].calls) == 2 and len(server.bodies) == 4  # two turns of two examples (no answer is SQL)


def test_an_explicit_option_the_backend_lacks_is_one_error_line(spider_layout, tmp_path, capsys):
    from text2sql_mlops.cli import main as cli_main

    argv = ["rollout", "--dataset_path", str(spider_layout), "--split", "train", "--output_dir", str(tmp_path / "out"),
            "--generator", "openai", "--base_url", "http://127.0.0.1:1/v1", "--model_name", "tiny",
            "--generator_option", "batch_size=4", "--no_progress"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --generator_option batch_size: the openai generator has no such option; "
                                                   "its options: base_url, model, api_key_env, max_concurrency,"), err
    assert not (tmp_path / "out").exists()
