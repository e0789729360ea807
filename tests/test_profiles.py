"""params.yaml and profiles/spider.yaml: same keys, and every unpacked section is made of real flags.

dvc.yaml passes whole sections to commands (``${eval}`` becomes ``--limit 24 --max_turns 3 ...``),
so a key that is not a flag of its command would only fail at `dvc repro` time; these tests
parse each section with the command's own parser instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from text2sql_mlops.core.cliutil import section_flags

REPO = Path(__file__).resolve().parents[1]
PROFILES = {"demo": REPO / "params.yaml", "spider": REPO / "profiles" / "spider.yaml",
            "smollm2-spider": REPO / "profiles" / "smollm2-spider.yaml"}


def keys(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict):
            out |= keys(value, f"{prefix}{key}.")
    return out


def parsers():
    from text2sql_mlops.mlops.evaluate import make_parser as eval_parser
    from text2sql_mlops.pairs.merge import make_parser as merge_parser
    from text2sql_mlops.pairs.mine import make_parser as mine_parser
    from text2sql_mlops.pairs.synth import make_parser as synth_parser
    from text2sql_mlops.rollout.command import make_parser as rollout_parser

    return {
        # section(s) -> (parser, the arguments the dvc.yaml command adds itself)
        ("generation", "schema", "eval"): (eval_parser(), ["--dataset_path", "d", "--output_dir", "o"]),
        ("generation", "schema", "rollout_train"): (rollout_parser(), ["--dataset_path", "d", "--output_dir", "o"]),
        ("generation", "schema", "rollout_repair"): (rollout_parser(), ["--dataset_path", "d", "--output_dir", "o"]),
        ("schema", "synth"): (synth_parser(), ["--dataset_path", "d", "--out", "o"]),
        ("mine",): (mine_parser(), ["--trajectories", "t", "--out", "o"]),
        ("merge",): (merge_parser(), ["--inputs", "a", "b", "--output", "o"]),
    }


def test_profiles_have_the_same_keys():
    demo, *others = (yaml.safe_load(path.read_text()) for path in PROFILES.values())
    assert all(keys(other) == keys(demo) for other in others)


@pytest.mark.parametrize("profile", PROFILES)
def test_unpacked_sections_are_flags_of_their_commands(profile: str):
    params = yaml.safe_load(PROFILES[profile].read_text())
    for sections, (parser, required) in parsers().items():
        argv = required + [flag for section in sections for flag in section_flags(params[section])]
        parser.parse_args(argv)  # raises UserError on an unknown flag or a bad value


@pytest.mark.parametrize("profile", PROFILES)
def test_training_sections_are_settings_of_their_methods(profile: str):
    from dataclasses import fields

    from text2sql_mlops.training.config import DPOSettings, SFTSettings

    params = yaml.safe_load(PROFILES[profile].read_text())
    assert set(params["sft"]) <= {f.name for f in fields(SFTSettings)}
    assert set(params["dpo"]) <= {f.name for f in fields(DPOSettings)}
    assert set(params["repair"]) <= {f.name for f in fields(SFTSettings)}  # the repair model is an SFT run


def test_dvc_yaml_passes_only_existing_sections():
    import re

    params = yaml.safe_load(PROFILES["demo"].read_text())
    text = (REPO / "dvc.yaml").read_text()
    for name in set(re.findall(r"\$\{([a-z_]+)(?:\.[a-z_]+)*\}", text)) - {"item"}:
        assert name in params, f"dvc.yaml uses ${{{name}...}} but params.yaml has no section {name!r}"
