"""Typed configs: coercion, ranges, unknown keys, docstrings on every field, presets that name sources."""

import dataclasses

import pytest

import agents
from rlkit.config import (
    Schedule,
    TrainConfig,
    apply_overrides,
    describe_keys,
    field_docs,
    keys_of,
    load_presets,
)
from rlkit.errors import UserError
from rlkit.runs import find_preset, resolve_spec
from rlkit.schedules import value


def test_every_agent_field_has_a_docstring():
    for name in agents.REGISTRY:
        cls = agents.get(name).Config
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, f"{name}: fields without a docstring: {missing}"
        assert dataclasses.fields(cls) and cls.__dataclass_params__.frozen
        assert describe_keys(cls)


def test_coercion_and_ranges():
    cfg = apply_overrides(agents.get("q_learning").Config(), {"gamma": 1, "total_steps": 1e5, "epsilon": 0.2})
    assert cfg.gamma == 1.0 and isinstance(cfg.gamma, float)
    assert cfg.total_steps == 100_000 and isinstance(cfg.total_steps, int)
    assert cfg.epsilon == Schedule(0.2, None)
    cfg = apply_overrides(cfg, {"epsilon.end": 0.01, "max_episode_steps": None})
    assert cfg.epsilon.end == 0.01 and cfg.max_episode_steps is None
    with pytest.raises(UserError, match=r"gamma=1.5 is out of range: gamma must be in \[0, 1\]"):
        apply_overrides(cfg, {"gamma": 1.5})
    with pytest.raises(UserError, match="expects a number"):
        apply_overrides(cfg, {"gamma": "abc"})
    with pytest.raises(UserError, match="expects an integer"):
        apply_overrides(cfg, {"total_steps": 2.5})
    with pytest.raises(UserError, match="expects true or false"):
        apply_overrides(cfg, {"progress": 1})
    with pytest.raises(UserError, match="must be one of linear, exponential"):
        apply_overrides(cfg, {"epsilon.kind": "cubic"})
    with pytest.raises(UserError, match="has no sub-keys"):
        apply_overrides(cfg, {"gamma.x": 1})


def test_unknown_key_suggests_and_lists():
    with pytest.raises(UserError) as e:
        apply_overrides(agents.get("sarsa").Config(), {"gama": 0.9}, owner="agent sarsa")
    msg = str(e.value)
    assert "unknown key 'gama' for agent sarsa (did you mean 'gamma'?)" in msg
    assert "valid keys:" in msg and "epsilon.start" in msg


def test_config_is_frozen():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]
    assert "seed" in keys_of(TrainConfig)


def test_presets_name_a_source_and_fit_their_agent():
    seen = 0
    for name in agents.REGISTRY:
        cls = agents.get(name)
        for env_key, preset in load_presets(name).items():
            assert len(preset.source) > 20, f"{name}.yaml:{env_key} needs a real source"
            apply_overrides(cls.Config(), preset.values, owner=f"{name}.yaml:{env_key}")
            seen += 1
    assert seen >= 6


def test_layering_defaults_preset_overrides():
    spec = resolve_spec({"agent": "q_learning", "env": "rooms", "lr": 0.5}, [])
    assert spec.config.gamma == 0.8  # preset
    assert spec.config.lr == 0.5  # override beats preset
    assert spec.config.q_init == 0.0  # default
    assert spec.env_kwargs == {"goal": "bootstrap"}
    assert "SEEDS.md" in spec.preset
    spec = resolve_spec({"agent": "q_learning", "env": "rooms", "env.goal": "terminal"}, [])
    assert spec.env_kwargs == {"goal": "terminal"}
    # a preset keyed by alias also applies when the user types the gymnasium id
    assert find_preset("q_learning", "CliffWalking-v1").env_key == "cliffwalking"


def test_schedules():
    lin = Schedule(1.0, 0.1, 0.5)
    assert value(lin, 0.0) == 1.0 and value(lin, 0.25) == pytest.approx(0.55) and value(lin, 0.9) == pytest.approx(0.1)
    exp = Schedule(1.0, 0.01, 1.0, "exponential")
    assert value(exp, 0.5) == pytest.approx(0.1)
    assert value(Schedule(0.3), 0.7) == 0.3
