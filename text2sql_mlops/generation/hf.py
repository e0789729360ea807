"""``hf``: generation with transformers, batched across examples.

Prompts are rendered with the chat template shared with training (``chat.py``) and
tokenized once. A decoding step reads all the weights however many rows it extends,
so rows are generated ``batch_size`` at a time (on 2 CPU cores, a step for 16 rows
takes about 3 times as long as for one); results come back in the caller's order.

Reading a prompt (prefill) costs as much in a batch as alone, and Spider prompts are
mostly schema: every question on a database starts with the same system message and
CREATE TABLE text. So prompts sharing most of their tokens (a group) are batched
together, and a batch reads each group's shared prefix once, at batch size 1, and
copies its cache into the group's rows: vLLM's prefix caching, in small. A prompt
alone in its group is read the same way, so a long prompt costs no padding. Groups
run longest first, so that rows of similar length share a batch, and on a GPU the
biggest batch runs first: running out of memory shows at once, not at the end.
Within a batch, the rows' own tokens are read in buckets of similar length
(``length_buckets``): a repair prompt carries the model's last answer, from a few tokens to
``max_new_tokens``, and one padded read of such a turn is mostly pads. A repair prompt that
continues a row of an earlier call starts from that row's kept cache (``hf_turns.py``) and
reads only what follows it.

Decoding is a short loop of our own rather than ``model.generate``: rows that ended leave
the batch (a quarter of it at a time, since leaving copies the cache), so the remaining
steps compute only the rows still going (with ``generate`` every row runs until the longest
ends, and SmolLM2's answers to Spider prompts run from 15 tokens to past a 128-token cap).
A prompt's samples share its one reading; the cache keeps room for the new positions
instead of growing by concatenation; sampling sorts only the top candidates when they hold
the nucleus. Each of these gives the same tokens to the bit as the plain way, and together
they halve a sampled rollout's time on 2 cores (README "Generation speed"). It applies ``SamplingParams`` and nothing else: the model folder's
own sampling defaults (e.g. Qwen's ``top_k=20, repetition_penalty=1.05``) are
ignored, as with an explicit vLLM ``SamplingParams``, so that backends agree.

``decoder="generate"`` hands each batch to ``model.generate`` instead (left padding, no prefix
sharing, every row computed until the batch's longest ends; a static cache on a GPU, where
kernels rather than wasted rows may decide): the same greedy tokens and stopping rules, other
samples. Which is faster on a GPU is for ``bench/bench_generation.py --decoders loop generate
--device cuda`` (and ``bench/gpu_check.sh``) to show; on 2 CPU cores the loop is (README
"Generation speed").
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, GenerationConfig, StoppingCriteria
from transformers.cache_utils import DynamicLayer

from ..core.errors import UserError
from ..prompts import answer_complete
from .adapters import check_model_folder, loading
from .base import Completion, GenerationRequest, Generator, SamplingParams
from .chat import encode, render_prompt
from .hf_options import HFOptions
from .hf_turns import TurnCache

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DECODERS = ("loop", "generate")


def resolve_device(device: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto``: bf16 on a GPU (half the memory, tensor cores); fp32 on CPU, where bf16 matmuls are slow."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPES:
        raise UserError(f"hf generator: unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def cache_keyword(model) -> str:
    """The keyword ``model``'s forward takes its attention cache by: ``cache`` from transformers
    5.24, ``past_key_values`` before (the GPU set's 5.20: vLLM 0.33 caps transformers below 5.21). Read
    from the signature, not the version: an older model's forward would take ``cache=`` into its
    ``**kwargs`` and silently run without the cache."""
    parameters = inspect.signature(model.forward).parameters
    if "cache" in parameters:
        return "cache"
    if "past_key_values" in parameters:
        return "past_key_values"
    raise UserError(f"hf generator: {type(model).__name__}.forward takes neither cache= nor past_key_values=; "
                    "this transformers version or model class is not supported")


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def same_group(a: list[int], b: list[int]) -> bool:
    """Whether two prompts share more than half their tokens (in practice: one schema)."""
    return 2 * common_prefix(a, b) > min(len(a), len(b))


def runs(prompts: list[list[int]]) -> list[list[int]]:
    """Indices of ``prompts`` cut into runs of neighbours in the same group."""
    groups: list[list[int]] = []
    for index, prompt in enumerate(prompts):
        if groups and same_group(prompts[groups[-1][-1]], prompt):
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def batch_order(prompts: list[list[int]]) -> list[int]:
    """Prompt indices in generation order: each group's prompts next to each other (sorting
    by tokens puts shared prefixes side by side), the group with the longest prompt first,
    longest first within a group."""
    by_tokens = sorted(range(len(prompts)), key=lambda i: prompts[i])
    groups = [[by_tokens[i] for i in run] for run in runs([prompts[i] for i in by_tokens])]
    groups.sort(key=lambda group: -max(len(prompts[i]) for i in group))
    return [index for group in groups for index in sorted(group, key=lambda i: -len(prompts[i]))]


def length_buckets(lengths: list[int], waste: float = 0.25) -> list[list[int]]:
    """Indices of ``lengths`` cut into buckets, longest first, in which padding to the
    bucket's longest costs no row more than ``waste`` of that length; each bucket's indices
    in ascending order (a single bucket is the rows as given)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    buckets: list[list[int]] = []
    for index in order:
        if buckets and lengths[index] >= (1 - waste) * lengths[buckets[-1][0]]:
            buckets[-1].append(index)
        else:
            buckets.append([index])
    return [sorted(bucket) for bucket in buckets]


NUCLEUS_CANDIDATES = 256  # the most likely tokens that usually hold a trained model's whole nucleus


def next_tokens(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """One token per row of ``[rows, vocab]`` logits: the most likely at temperature 0, else
    a sample at ``temperature`` from the smallest set of tokens whose probability reaches ``top_p``."""
    if params.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    # Sorting the whole vocabulary of every row costs more than the rest of sampling together
    # (SmolLM2: 49,152 tokens). When every row's nucleus lies inside its top candidates, the
    # tokens after them get probability 0 below in any order, so those go unsorted. The margin
    # keeps float rounding of the running sums from moving that boundary; multinomial draws
    # over the full-width row either way, so a seed gives the same samples as a full sort.
    candidates = min(NUCLEUS_CANDIDATES, probs.shape[-1])
    top_probs, top_order = probs.topk(candidates, dim=-1)
    if candidates < probs.shape[-1] and bool((top_probs.cumsum(dim=-1)[:, -1] >= params.top_p + 1e-4).all()):
        sorted_probs, order = torch.zeros_like(probs), torch.zeros_like(probs, dtype=torch.long)
        sorted_probs[:, :candidates], order[:, :candidates] = top_probs, top_order
    else:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
    sorted_probs[sorted_probs.cumsum(dim=-1) - sorted_probs >= params.top_p] = 0  # the first token always stays
    return order.gather(-1, torch.multinomial(sorted_probs, 1)).squeeze(-1)


class RoomyLayer(DynamicLayer):
    """A layer's attention cache with room reserved for the positions decoding adds: each step
    writes its keys and values into the room, where ``DynamicLayer.update`` concatenates, copying
    the whole cache at every step (on 2 cores a quarter of a sampled rollout's generation time,
    192 rows of 400 positions). Attention reads the same values through a view of the filled
    part, so the results are the same to the bit (tests/test_generation.py)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int, length: int | None = None) -> None:
        """``keys`` and ``values`` padded with ``room`` positions; or, given ``length``, buffers
        already holding their first ``length`` positions (and room after them), taken as they are."""
        super().__init__()
        if length is None:
            self.length = keys.shape[-2]
            self._keys, self._values = (torch.nn.functional.pad(states, (0, 0, 0, room)) for states in (keys, values))
        else:
            self.length, self._keys, self._values = length, keys, values
        self.device, self.is_initialized = keys.device, True
        self._view()

    def _view(self) -> None:
        self.keys, self.values = self._keys[..., : self.length, :], self._values[..., : self.length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        added = key_states.shape[-2]
        if self.length + added > self._keys.shape[-2]:  # out of room: grow by as much again as it holds
            grow = (0, 0, 0, self.length + added)
            self._keys, self._values = (torch.nn.functional.pad(states, grow) for states in (self._keys, self._values))
        self._keys[..., self.length : self.length + added, :] = key_states
        self._values[..., self.length : self.length + added, :] = value_states
        self.length += added
        self._view()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices, ...], self._values[indices, ...]
        self._view()

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._keys, self._values = self._keys.repeat_interleave(repeats, dim=0), self._values.repeat_interleave(repeats, dim=0)
        self._view()


class AnswerClosed(StoppingCriteria):
    """For ``decoder="generate"``: a row is done once its answer block closes, as in the loop."""

    def __init__(self, generator: HFGenerator, prompt_width: int) -> None:
        self.tokenizer, self.backtick_ids, self.prompt_width = generator.tokenizer, generator.backtick_ids, prompt_width

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        done = torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
        for row, token in enumerate(input_ids[:, -1].tolist()):
            if token in self.backtick_ids:
                text = self.tokenizer.decode(input_ids[row, self.prompt_width :].tolist(), skip_special_tokens=True)
                done[row] = answer_complete(text)
        return done


def with_room(cache: DynamicCache, room: int) -> DynamicCache:
    """``cache`` with ``room`` positions reserved in each plain layer (``RoomyLayer``)."""
    for index, layer in enumerate(cache.layers):
        if type(layer) is DynamicLayer and layer.is_initialized:
            cache.layers[index] = RoomyLayer(layer.keys, layer.values, room)
    return cache


class HFGenerator(Generator):
    """A transformers causal LM from ``model_path``, optionally with the LoRA adapter at ``adapter_path``."""

    name = "hf"

    def __init__(self, options: HFOptions) -> None:
        model_path, batch_size, device_map = options.model_path, options.batch_size, options.device_map
        if not model_path:
            raise UserError("hf generator needs model_path (a Hugging Face model folder, e.g. models/smollm2-135m-instruct)")
        model_dir = check_model_folder(model_path)
        if batch_size < 1:
            raise UserError(f"hf generator: batch_size must be at least 1, got {batch_size}")
        if options.decoder not in DECODERS:
            raise UserError(f"hf generator: unknown decoder {options.decoder!r}; choose {' or '.join(DECODERS)}")
        if options.turn_cache_mb < 0:
            raise UserError(f"hf generator: turn_cache_mb must be 0 (off) or more, got {options.turn_cache_mb}")
        self.decoder = options.decoder
        self.batch_size = batch_size
        self.progress = options.progress
        self.device = resolve_device(options.device)
        # device_map (e.g. "auto": accelerate spreads the layers over the GPUs) places the model itself.
        placed = {"device_map": device_map} if device_map else {}
        with loading("the model", model_dir):
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve_dtype(options.dtype, self.device), **placed)
        if options.adapter_path:
            model = self._with_adapter(model, Path(options.adapter_path))
        self.model = (model if device_map else model.to(self.device)).eval()
        if device_map:
            self.device = str(self.model.get_input_embeddings().weight.device)
        self.frees_cpu = str(self.device) != "cpu"

        # Stop at any end-of-turn id the model declares (Qwen lists two) or the tokenizer's EOS.
        declared = self.model.generation_config.eos_token_id
        declared = declared if isinstance(declared, list) else [declared]
        self.stop_ids = [i for i in dict.fromkeys([*declared, self.tokenizer.eos_token_id]) if i is not None]
        if not self.stop_ids:
            raise UserError(f"{model_dir}: neither the tokenizer nor generation_config.json names an EOS token")
        self.stop_tensor = torch.tensor(self.stop_ids, device=self.device)
        # Tokens that can close a fenced block: only after one of these is the text re-read.
        vocabulary = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        self.backtick_ids = frozenset(i for i, piece in enumerate(vocabulary) if piece and "`" in piece)
        pad = self.tokenizer.pad_token_id  # any id would do: padding is masked out
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        # Prefix caches are reused only where a cached position is a plain key/value pair:
        # not in sliding-window or linear-attention layers.
        layers = DynamicCache(config=self.model.config)
        self.reuse_prefixes = not any(layers.is_sliding) and not any(layers.is_linear)
        self.cache_keyword = cache_keyword(self.model)
        # Finished answers' caches for the next turn (hf_turns.py); they need the prefix layout too.
        keep_turns = self.reuse_prefixes and options.decoder == "loop" and options.turn_cache_mb > 0
        self.turns = TurnCache(options.turn_cache_mb << 20) if keep_turns else None
        # decoder=generate: generate() fills every setting left unset from the model folder's
        # generation_config (Qwen's top_k=20, repetition_penalty=1.05); a neutral one keeps
        # SamplingParams the only knobs (the loop reads nothing from it after the stop ids above).
        self.model.generation_config = GenerationConfig(eos_token_id=self.stop_ids, pad_token_id=self.pad_id)

    @staticmethod
    def _with_adapter(model, adapter_dir: Path):
        if not (adapter_dir / "adapter_config.json").is_file():
            raise UserError(f"LoRA adapter not found: {adapter_dir} has no adapter_config.json (a fully fine-tuned "
                            "model folder is a --model_path)")
        from peft import PeftModel

        # Merged weights generate as fast as the base model; the adapter is never trained from here.
        with loading("the LoRA adapter", adapter_dir, base=model.name_or_path):
            return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()

    def close(self) -> None:
        if self.turns is not None:
            self.turns.clear()

    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        if self.turns is not None:
            self.turns.new_call()
        prompts = [encode(self.tokenizer, render_prompt(self.tokenizer, request.messages)) for request in requests]
        order = batch_order(prompts)
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        if not params.greedy:
            # Same seed, requests and batch_size -> same samples (batch composition matters).
            torch.manual_seed(params.seed)
        results: list[list[Completion]] = [[] for _ in requests]
        generate_batch = self._generate_batch if self.decoder == "loop" else self._transformers_generate
        for batch in tqdm(batches, desc="hf generate", unit="batch", file=sys.stderr, disable=not self.progress, leave=False):
            for index, completions in zip(batch, generate_batch([prompts[index] for index in batch], params)):
                results[index] = completions
        return results

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        # Each group computes its shared prefix once (a lone prompt: all but its last token,
        # so that it is read at batch size 1, without padding). Every prompt keeps at least
        # one token of its own: the first batched forward pass predicts from it.
        prefixes: list[list[int]] = [[] for _ in prompts]
        if self.reuse_prefixes:
            for group in runs(prompts):
                first = prompts[group[0]]
                shared = min(min(common_prefix(first, prompts[i]) for i in group), min(len(prompts[i]) for i in group) - 1)
                for index in group:
                    prefixes[index] = first[:shared]
            if not all(prefixes):  # a one-token prompt: nothing to cache, so plain left padding
                prefixes = [[] for _ in prompts]

        computed: dict[tuple[int, ...], DynamicCache] = {}
        bases = self._continue_kept_turns(prompts, prefixes, computed) if self.turns is not None and all(prefixes) else {}

        rows = [(prefix, prompt[len(prefix) :]) for prefix, prompt in zip(prefixes, prompts)]
        # Rows are read in buckets of similar length (a repair prompt holds the model's last
        # answer, from a few tokens to max_new_tokens, so one padded read would be mostly pads),
        # then continue as one batch. Without prefix reuse (sliding-window layers keep only
        # their window, so their caches cannot be padded afterwards) all rows are read at once.
        buckets = length_buckets([len(own) for _, own in rows]) if self.reuse_prefixes else [list(range(len(rows)))]
        read = [self._prefill([rows[i] for i in bucket], computed) for bucket in buckets]
        for index, prefix in enumerate(prefixes):
            if index not in bases:
                bases[index] = (computed[tuple(prefix)], len(prefix)) if prefix else (None, 0)
        # Back in row order, so that sampling draws for the same rows as one read would.
        read_order = [i for bucket in buckets for i in bucket]
        batch = self._merge(read, sorted(range(len(rows)), key=read_order.__getitem__), params.max_new_tokens)
        del read, computed  # the buckets' and prefixes' caches: decoding holds only the merged one
        # One row per sample, a prompt's samples next to each other, each starting from the
        # prompt's one reading. Greedy samples are all the same sequence: decode it once, copy it below.
        copies = 1 if params.greedy else params.num_samples
        batch = self._repeated(batch, copies) if copies > 1 else batch
        keep = self._turn_keeper(prompts, bases, batch[2], copies) if self.turns is not None else None
        generated = self._decode(*batch, params, keep=keep)
        return self._completions(generated, params)

    def _continue_kept_turns(self, prompts: list[list[int]], prefixes: list[list[int]],
                             computed: dict[tuple[int, ...], DynamicCache]) -> dict[int, tuple[DynamicCache | None, int]]:
        """Start each prompt that continues a finished answer of an earlier call (a repair turn)
        from that answer's kept cache: its prefix in ``prefixes`` grows to the kept part (a lone
        prompt's all-but-last-token prefix reads on from it) and its cache goes into
        ``computed``. Returns the (base, base length) of each such prompt: the group prefix its
        kept row was stored on, which stays its base for the next turn."""
        bases = {}
        for index, prompt in enumerate(prompts):
            row, length = self.turns.match(prompt)
            if row is None:
                continue
            if length >= len(prefixes[index]):
                prefixes[index] = prompt[:length]
            if tuple(prefixes[index]) in computed:  # a prefix the group (or the same prompt) reads already
                continue
            cache = self.turns.cache(row, length, self.model.config)
            if length < len(prefixes[index]):
                self._read_into(cache, prefixes[index][length:])
            computed[tuple(prefixes[index])] = cache
            bases[index] = (row.base, row.base_length)
            self.turns.drop(row)  # a turn continues an answer once
        return bases

    def _turn_keeper(self, prompts: list[list[int]], bases: dict[int, tuple[DynamicCache | None, int]],
                     mask: torch.Tensor, copies: int):
        """``_decode``'s ``keep``: each finished row's cache into the turn cache, as its base (the
        group prefix) and the positions after it, prompt then generated, read from the batch's
        cache by the read batch's ``mask`` (a row's prompt positions are its ones, in order)."""
        columns = [row.nonzero().squeeze(-1) for row in mask]
        width = mask.shape[1]

        def keep(cache: DynamicCache, batch_rows: list[int], originals: list[int], fed: int, generated: list[list[int]]) -> None:
            for batch_row, original in zip(batch_rows, originals):
                index, tokens = original // copies, generated[original][:fed]
                base, base_length = bases[index]
                positions = torch.cat([columns[original][base_length:],
                                       torch.arange(width, width + len(tokens), device=columns[original].device)])
                own = [(layer.keys[batch_row : batch_row + 1].index_select(-2, positions.to(layer.keys.device)),
                        layer.values[batch_row : batch_row + 1].index_select(-2, positions.to(layer.values.device)))
                       for layer in cache.layers]
                self.turns.add(prompts[index] + tokens, len(prompts[index]), base, base_length, own)

        return keep

    def _completions(self, generated: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        """Each prompt's ``params.num_samples`` completions from the generated ids of its rows
        (one row per prompt when greedy, else ``num_samples`` rows next to each other)."""
        copies = 1 if params.greedy else params.num_samples
        stop_ids = set(self.stop_ids)
        answers = [ids[:-1] if ids and ids[-1] in stop_ids else ids for ids in generated]
        texts = self.tokenizer.batch_decode(answers, skip_special_tokens=True)
        # num_tokens counts the stop token, as vLLM does.
        completions = [Completion(text=text, num_tokens=len(ids)) for text, ids in zip(texts, generated)]
        if params.greedy:
            return [[Completion(row.text, row.num_tokens) for _ in range(params.num_samples)] for row in completions]
        return [completions[start : start + copies] for start in range(0, len(completions), copies)]

    @torch.inference_mode()
    def _transformers_generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        """``decoder="generate"``: the batch through ``model.generate``, left-padded."""
        width = max(len(prompt) for prompt in prompts)
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        # top_k=0: no top-k cut (generate's default is 50); greedy takes no sampling flags at all.
        sampled = {} if params.greedy else {"temperature": params.temperature, "top_p": params.top_p, "top_k": 0,
                                             "num_return_sequences": params.num_samples}
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens, do_sample=not params.greedy, repetition_penalty=1.0,
            eos_token_id=self.stop_ids, pad_token_id=self.pad_id,
            cache_implementation="static" if str(self.device).startswith("cuda") else None, **sampled,
        )
        output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                                     stopping_criteria=[AnswerClosed(self, width)])
        return self._completions([self._answer_ids(row) for row in output[:, width:].tolist()], params)

    def _answer_ids(self, row: list[int]) -> list[int]:
        """A row of ``generate``'s output cut where the loop stops: after its first stop token, or
        after the token that closed its answer block (``generate`` pads a finished row to the
        batch's end)."""
        for end, token in enumerate(row, start=1):
            if token in self.stop_ids or (token in self.backtick_ids and answer_complete(
                    self.tokenizer.decode(row[:end], skip_special_tokens=True))):
                return row[:end]
        return row

    @torch.inference_mode()
    def _prefill(self, rows: list[tuple[list[int], list[int]]], computed: dict) -> tuple[torch.Tensor, DynamicCache, torch.Tensor, torch.Tensor]:
        """Read ``rows`` (prefix, own tokens) in one forward pass: the last position's logits,
        the attention cache, the attention mask and each row's next position."""
        # Layout: [pads, prefix, pads, own tokens]; plain left padding when nothing is
        # cached. Every row's next token is generated at the same column, and positions are
        # counted from the attention mask, so the pads shift nothing.
        prefix_width = max(len(prefix) for prefix, _ in rows)
        own_width = max(len(own) for _, own in rows)
        input_ids, attention_mask = [], []
        for prefix, own in rows:
            prefix_pads, own_pads = prefix_width - len(prefix), own_width - len(own)
            input_ids.append([self.pad_id] * prefix_pads + prefix + [self.pad_id] * own_pads + own)
            attention_mask.append([0] * prefix_pads + [1] * len(prefix) + [0] * own_pads + [1] * len(own))
        cache = self._prefix_cache(rows, prefix_width, computed) if prefix_width else DynamicCache(config=self.model.config)
        mask = torch.tensor(attention_mask, device=self.device)
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        output = self.model(
            input_ids=torch.tensor(input_ids, device=self.device)[:, prefix_width:],
            attention_mask=mask,
            position_ids=positions[:, prefix_width:],
            **{self.cache_keyword: cache},
            use_cache=True,
            logits_to_keep=1,
        )
        return output.logits[:, -1], cache, mask, positions[:, -1:] + 1

    @torch.inference_mode()
    def _merge(self, parts: list[tuple[torch.Tensor, DynamicCache, torch.Tensor, torch.Tensor]],
               order: list[int], room: int) -> tuple[torch.Tensor, DynamicCache, torch.Tensor, torch.Tensor]:
        """Buckets read apart as one batch, its rows in ``order`` (indices into the buckets'
        rows, first bucket first): each bucket's cache and mask left-padded to the widest (a
        pad is masked, so it changes no row's attention). The merged cache is written once,
        straight into buffers with ``room`` positions for decoding (``RoomyLayer``)."""
        if len(parts) == 1:
            return parts[0]
        width = max(mask.shape[1] for _, _, mask, _ in parts)
        rows = torch.tensor(order, device=self.device)
        place = torch.empty_like(rows)  # where each of the buckets' rows goes in the merged batch
        place[rows] = torch.arange(len(order), device=self.device)
        merged = DynamicCache(config=self.model.config)
        for layer in range(len(merged.layers)):
            states = []
            for kind in ("keys", "values"):
                first = getattr(parts[0][1].layers[layer], kind)
                buffer = first.new_zeros(len(order), first.shape[1], width + room, first.shape[3])
                start = 0
                for _, cache, _, _ in parts:
                    part = getattr(cache.layers[layer], kind)
                    buffer[place[start : start + len(part)].to(buffer.device), :, width - part.shape[2] : width] = part
                    start += len(part)
                states.append(buffer)
            merged.layers[layer] = RoomyLayer(*states, room=room, length=width)
        mask = torch.cat([torch.nn.functional.pad(mask, (width - mask.shape[1], 0)) for _, _, mask, _ in parts])[rows]
        logits = torch.cat([logits for logits, *_ in parts])[rows]
        return logits, merged, mask, torch.cat([position for *_, position in parts])[rows]

    @staticmethod
    def _repeated(batch: tuple[torch.Tensor, DynamicCache, torch.Tensor, torch.Tensor], copies: int
                  ) -> tuple[torch.Tensor, DynamicCache, torch.Tensor, torch.Tensor]:
        """Each row of a read batch ``copies`` times over, copies next to each other."""
        logits, cache, mask, position = batch
        cache.batch_repeat_interleave(copies)
        return (logits.repeat_interleave(copies, dim=0), cache, mask.repeat_interleave(copies, dim=0),
                position.repeat_interleave(copies, dim=0))

    @torch.inference_mode()
    def _decode(self, logits: torch.Tensor, cache: DynamicCache, attention_mask: torch.Tensor, next_position: torch.Tensor,
                params: SamplingParams, keep=None) -> list[list[int]]:
        """The generated token ids of each row, up to and including its stop token, at most
        ``max_new_tokens``, from the read prompts' last logits and cache. Rows that stopped
        leave the batch (and the cache) once they are a quarter of it: taking rows out copies
        the whole cache, so it is done a few times, not each time a row ends; until then a
        stopped row is computed and ignored (it draws no sample).

        ``keep(cache, batch rows, original rows, fed, generated)`` sees each row's cache as it
        leaves the batch and at the end: ``fed`` decoding steps have run, so the first
        ``min(len(generated[row]), fed)`` generated tokens of a row have cached states (a row
        is fed its tokens while it runs, and its stop token in the step after it stops)."""
        cache = with_room(cache, params.max_new_tokens)
        rows = list(range(len(logits)))  # the original row of each row of the batch
        running = torch.ones(len(rows), dtype=torch.bool, device=logits.device)
        generated: list[list[int]] = [[] for _ in rows]
        step = 0
        for step in range(params.max_new_tokens):
            active = running.nonzero().squeeze(-1)
            chosen = next_tokens(logits if len(active) == len(rows) else logits[active], params)
            going = ~torch.isin(chosen, self.stop_tensor)
            for i, (row, token) in enumerate(zip(active.tolist(), chosen.tolist())):
                generated[rows[row]].append(token)
                # A row whose answer block just closed stops too: later tokens cannot change its SQL
                # (prompts.answer_complete), and small models chat on after the block.
                if token in self.backtick_ids and answer_complete(self.tokenizer.decode(generated[rows[row]], skip_special_tokens=True)):
                    going[i] = False
            running[active[~going]] = False
            if step + 1 == params.max_new_tokens or not going.any():
                break
            tokens = torch.full_like(running, self.pad_id, dtype=chosen.dtype)
            tokens[active] = chosen
            if 4 * int((~running).sum()) >= len(rows):
                if keep is not None:
                    leaving = (~running).nonzero().squeeze(-1).tolist()
                    keep(cache, leaving, [rows[i] for i in leaving], step, generated)
                staying = running.nonzero().squeeze(-1)
                rows = [rows[i] for i in staying.tolist()]
                tokens, attention_mask, next_position, running = tokens[staying], attention_mask[staying], next_position[staying], running[staying]
                cache.batch_select_indices(staying)
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=-1)
            logits = self.model(input_ids=tokens[:, None], attention_mask=attention_mask, position_ids=next_position, use_cache=True,
                                **{self.cache_keyword: cache}).logits[:, -1]
            next_position = next_position + 1
        if keep is not None:
            keep(cache, list(range(len(rows))), rows, step, generated)
        return generated

    @torch.inference_mode()
    def _read_into(self, cache: DynamicCache, tokens: list[int]) -> None:
        """Extend a batch-1 ``cache`` by reading ``tokens`` after it."""
        self.model(input_ids=torch.tensor([tokens], device=self.device), use_cache=True, logits_to_keep=1,
                   **{self.cache_keyword: cache})

    @torch.inference_mode()
    def _prefix_cache(self, rows: list[tuple[list[int], list[int]]], width: int, computed: dict) -> DynamicCache:
        """The attention cache of every row's prefix, left-padded to ``width``: each distinct
        prefix is computed once, at batch size 1 (``computed`` keeps them for the batch's
        other buckets), and copied into the rows that share it."""
        for prefix, _ in rows:
            if tuple(prefix) not in computed:
                cache = computed[tuple(prefix)] = DynamicCache(config=self.model.config)
                # logits_to_keep=1: nothing reads the prefix's logits, and the vocabulary projection is costly.
                self._read_into(cache, prefix)
        return self._left_padded([(computed[tuple(prefix)], width - len(prefix)) for prefix, _ in rows])

    def _left_padded(self, caches: list[tuple[DynamicCache, int]], rows: torch.Tensor | None = None) -> DynamicCache:
        """One cache stacking ``caches`` (each with its left padding), optionally reordered to ``rows``."""
        merged = DynamicCache(config=self.model.config)
        for layer in range(len(merged.layers)):
            # Cached states are [batch, heads, positions, head_dim]: pad positions on the left.
            keys = torch.cat([torch.nn.functional.pad(cache.layers[layer].keys, (0, 0, pads, 0)) for cache, pads in caches])
            values = torch.cat([torch.nn.functional.pad(cache.layers[layer].values, (0, 0, pads, 0)) for cache, pads in caches])
            if rows is not None:  # with a device_map, each layer's cache is on its layer's device
                keys, values = keys[rows.to(keys.device)], values[rows.to(values.device)]
            merged.update(keys, values, layer)
        return merged
