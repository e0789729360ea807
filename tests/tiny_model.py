"""A tiny random-weight Llama with an offline tokenizer, for tests that need a real model.

``build_tiny_llama(path)`` writes an ordinary Hugging Face folder, so
``AutoTokenizer.from_pretrained(path)`` and ``AutoModelForCausalLM.from_pretrained(path)``
load it like any downloaded model, and peft LoRA on all linear layers applies to it.
Nothing touches a model hub: the tokenizer is a byte-level BPE trained here on a few
lines of SQL and English, so any text (not only the corpus) encodes and decodes back.

The weights are random (fixed seed), so its outputs are gibberish, but deterministic:
good enough to test batching, sampling, adapters and training mechanics.
"""

from __future__ import annotations

from pathlib import Path

# ChatML, as SmolLM2 and Qwen use it. The {% generation %} markers change nothing in the
# rendered text; they let TRL compute an assistant-only loss mask from the template.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Ids 0..3, in this order. Padding has its own token (unlike SmolLM2, where pad == eos),
# so tests notice code that confuses the two.
UNK, BOS, EOS, PAD = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"

CORPUS = [
    "SELECT name FROM singer WHERE age > 30 ORDER BY name",
    "SELECT count(*) FROM concert GROUP BY year HAVING count(*) > 1",
    "SELECT T1.name, avg(T2.age) FROM stadium AS T1 JOIN concert AS T2 ON T1.id = T2.stadium_id",
    "SELECT DISTINCT country FROM singer WHERE is_male = 'T' LIMIT 5",
    "INSERT INTO singer VALUES (1, 'Joe', 'France', 52)",
    "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT)",
    "How many singers are there? List the names of all singers from France.",
    "What is the average age of the students? Show the names of the stadiums.",
    "You are a helpful assistant that writes one SQL query for the question.",
    "The query failed with an error: no such column. Please fix the query.",
    "```sql\nSELECT * FROM table\n```",
]


def build_tokenizer(vocab_size: int = 512):
    """A ``PreTrainedTokenizerFast`` with ChatML special tokens, trained offline in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[UNK, BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte, so nothing is unknown
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_llama(path: str | Path, seed: int = 0, max_positions: int = 512, intermediate_size: int = 128) -> Path:
    """Write a ~0.1M-parameter ``LlamaForCausalLM`` and its tokenizer to ``path``; return it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=intermediate_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, as in SmolLM2 and Qwen
        max_position_embeddings=max_positions,  # rotary: longer costs no parameters
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_lora(path: str | Path, base: str | Path, seed: int = 0) -> Path:
    """Write a LoRA adapter (r=4 on every linear layer) for the tiny Llama at ``base``, with its
    tokenizer beside it as ``train`` saves it; return ``path``.

    Its A and B matrices are random and non-zero (peft starts B at zero), so the adapter
    changes the base model's outputs and two seeds give two different adapters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(base).save_pretrained(path)
    return path
