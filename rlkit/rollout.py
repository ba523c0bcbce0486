"""On-policy rollouts: storage, advantages and returns, and the loop that fills them (PPO, A2C, REINFORCE, TRPO).

    for t = 0 .. n_steps-1, in n_envs envs at once:
        a_t, logp_t, v_t <- policy(s_t)
        s_{t+1}, r_t, terminated_t, truncated_t <- env.step(clip(a_t))
        store (s_t, a_t, logp_t, v_t, r_t, terminated_t, truncated_t) and, on truncation, V(real final obs)
    advantages by GAE (`compute_gae`) or Monte-Carlo returns (`compute_returns`), bootstrapped from
    V(s_T) at the end of the rollout and from V(real final obs) where an episode was truncated

Termination (the MDP reached a terminal state) cuts the return; truncation (a time limit) does not:
the value of the observation the env really reached stands in for the rewards that would have
followed (Pardo et al. 2018, "Time limits in reinforcement learning"). Arrays are time-major,
(T, n_envs, ...); the math functions also take (T,) arrays for a single env.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from rlkit.vec import finished_episodes

# --------------------------------------------------------------------------------------------------
# The math, as pure functions over time-major numpy arrays


def compute_gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
                dones: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns) by generalized advantage estimation (Schulman et al. 2016, eq. 16).

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma lam (1 - done_t) A_{t+1}          returns = A_t + V(s_t)

    `next_values[t]` is V of the observation step t really reached (the real final one when the
    episode ended there; V(s_T) at the last step); `dones = terminated | truncated` cuts the trace.
    """
    rewards, values, next_values = (np.asarray(x, dtype=np.float32) for x in (rewards, values, next_values))
    not_terminal = 1.0 - np.asarray(terminated, dtype=np.float32)
    not_done = 1.0 - np.asarray(dones, dtype=np.float32)
    delta = rewards + gamma * not_terminal * next_values - values  # every step at once; only the trace recurs
    decay = gamma * lam * not_done
    adv = np.zeros_like(rewards)
    last = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        last = delta[t] + decay[t] * last
        adv[t] = last
    return adv, adv + values


def compute_returns(rewards: np.ndarray, next_values: np.ndarray, terminated: np.ndarray, dones: np.ndarray,
                    gamma: float) -> np.ndarray:
    """Discounted Monte-Carlo returns G_t = r_t + gamma G_{t+1}, restarted at every episode end.

    Where an episode ends (or the arrays end), G_{t+1} is replaced by 0 on termination and by
    `next_values[t]` otherwise (truncation, or a rollout cut mid-episode): pass zeros when there is no critic.
    """
    rewards, next_values = np.asarray(rewards, dtype=np.float32), np.asarray(next_values, dtype=np.float32)
    terminated, dones = np.asarray(terminated, dtype=bool), np.asarray(dones, dtype=bool)
    ret = np.zeros_like(rewards)
    for t in reversed(range(len(rewards))):
        bootstrap = np.where(terminated[t], 0.0, next_values[t])
        future = bootstrap if t == len(rewards) - 1 else np.where(dones[t], bootstrap, ret[t + 1])
        ret[t] = rewards[t] + gamma * future
    return ret


def normalize_advantage(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(A - mean A) / (std A + eps) over the batch, as SB3 and CleanRL do per minibatch (a lone sample: centred)."""
    if adv.numel() < 2:
        return adv - adv.mean()
    return (adv - adv.mean()) / (adv.std() + eps)


def explained_variance(pred: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - pred] / Var[target]: 1 is a perfect critic, 0 no better than a constant (nan if Var = 0)."""
    var = float(np.var(target))
    return float("nan") if var == 0 else 1.0 - float(np.var(np.asarray(target) - np.asarray(pred))) / var


# --------------------------------------------------------------------------------------------------
# Storage


class Batch(NamedTuple):
    """A flat (minibatch of a) rollout as tensors: one row per (step, env)."""

    obs: torch.Tensor
    actions: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor
    adv: torch.Tensor
    ret: torch.Tensor
    action_masks: torch.Tensor | None


class RolloutBuffer:
    """n_steps x n_envs transitions of one rollout, with the values needed to bootstrap (grows if filled).

    Fields, all time-major (T, n_envs, ...): obs (what the policy saw, i.e. normalized if the agent
    normalizes), actions (as sampled, before clipping to the action bounds), logp, values, rewards
    (as learned from, i.e. normalized if the agent normalizes), terminated, truncated, final_values
    (V of the real final observation where truncated, else 0) and, if the env gives them, action_masks.
    `last_values` is V(s_T) of the observation after the last step; `last_obs` is s_T and `final_obs[t]`
    (env indices, observations) the real final observations of the episodes truncated at step t, both as
    the policy saw them, so `recompute_gae` can bootstrap with a critic that has since changed.
    """

    def __init__(self, n_steps: int, n_envs: int, obs_shape: tuple[int, ...], obs_dtype: Any,
                 action_shape: tuple[int, ...], action_dtype: Any):
        self.n_envs = n_envs
        self.obs = np.zeros((n_steps, n_envs, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((n_steps, n_envs, *action_shape), dtype=action_dtype)
        self.logp = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.values = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.rewards = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.terminated = np.zeros((n_steps, n_envs), dtype=bool)
        self.truncated = np.zeros((n_steps, n_envs), dtype=bool)
        self.final_values = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.action_masks: np.ndarray | None = None
        self.last_values = np.zeros(n_envs, dtype=np.float32)
        self.last_obs: np.ndarray | None = None
        self.final_obs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.adv: np.ndarray | None = None
        self.ret: np.ndarray | None = None
        self.pos = 0

    FIELDS = ("obs", "actions", "logp", "values", "rewards", "terminated", "truncated", "final_values")

    @property
    def capacity(self) -> int:
        return len(self.rewards)

    def reset(self) -> None:
        """Empty the buffer (arrays are kept and overwritten)."""
        self.pos = 0
        self.adv = self.ret = None
        self.last_obs = None
        self.final_obs = {}

    def add(self, obs: np.ndarray, actions: np.ndarray, logp: np.ndarray, values: np.ndarray, rewards: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, final_values: np.ndarray | None = None,
            action_masks: np.ndarray | None = None, final_obs: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Store one vector step: s_t, a_t, log pi(a_t|s_t), V(s_t), r_t, flags and V(real final obs) if truncated
        (`final_obs`: the truncated envs' indices and their real final observations)."""
        if self.pos == self.capacity:
            self._grow()
        t = self.pos
        self.obs[t] = obs
        self.actions[t] = actions
        self.logp[t] = logp
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.final_values[t] = 0.0 if final_values is None else final_values
        if final_obs is not None:
            self.final_obs[t] = final_obs
        if action_masks is not None:
            if self.action_masks is None:
                self.action_masks = np.ones((self.capacity, self.n_envs, *np.shape(action_masks)[1:]), dtype=bool)
            self.action_masks[t] = action_masks
        self.pos += 1

    def _grow(self) -> None:
        """Double the capacity (REINFORCE collects whole episodes of unknown length)."""
        for name in self.FIELDS + ("action_masks",):
            arr = getattr(self, name)
            if arr is not None:
                setattr(self, name, np.concatenate([arr, np.zeros_like(arr)]))

    @property
    def dones(self) -> np.ndarray:
        """terminated | truncated of the stored steps."""
        return self.terminated[: self.pos] | self.truncated[: self.pos]

    def next_values(self) -> np.ndarray:
        """V of the observation each stored step reached: V(s_{t+1}), V(real final obs) where truncated, V(s_T) last.

        Where an episode terminated the entry is V of the next episode's first obs; the math ignores it."""
        T = self.pos
        nxt = np.concatenate([self.values[1:T], self.last_values[None]], axis=0)
        return np.where(self.truncated[:T], self.final_values[:T], nxt)

    def compute_gae(self, gamma: float, lam: float) -> None:
        """Fill `adv` and `ret` (= adv + values, the critic's target) by GAE(gamma, lam)."""
        T = self.pos
        self.adv, self.ret = compute_gae(self.rewards[:T], self.values[:T], self.next_values(), self.terminated[:T],
                                         self.dones, gamma, lam)

    def recompute_gae(self, value_fn: Callable[[np.ndarray], np.ndarray], gamma: float, lam: float) -> None:
        """Fill `adv` and `ret` by GAE again, with V from `value_fn` (a batch of stored observations -> values) in
        place of the values stored at collection, which stay in `values` (PPO's value clipping reads them)."""
        if self.last_obs is None:
            raise RuntimeError("recompute_gae needs a rollout collected by a Collector (it sets last_obs)")
        T, n = self.pos, self.n_envs
        values = np.asarray(value_fn(self.obs[:T].reshape(T * n, *self.obs.shape[2:])), np.float32).reshape(T, n)
        nxt = np.concatenate([values[1:], np.asarray(value_fn(self.last_obs), np.float32)[None]], axis=0)
        for t, (idx, obs) in self.final_obs.items():
            nxt[t, idx] = value_fn(obs)
        self.adv, self.ret = compute_gae(self.rewards[:T], values, nxt, self.terminated[:T], self.dones, gamma, lam)

    def compute_returns(self, gamma: float, bootstrap: bool = True) -> None:
        """Fill `ret` with discounted Monte-Carlo returns (and `adv` = ret - values); without `bootstrap`
        truncated episodes end with 0 (no critic to bootstrap from)."""
        T = self.pos
        nxt = self.next_values() if bootstrap else np.zeros((T, self.n_envs), np.float32)
        self.ret = compute_returns(self.rewards[:T], nxt, self.terminated[:T], self.dones, gamma)
        self.adv = self.ret - self.values[:T]

    def complete_episodes_mask(self) -> np.ndarray:
        """(T, n_envs) True for steps of episodes that ended inside the buffer (each env's steps up to its last end)."""
        dones = self.dones
        T = len(dones)
        last_end = np.where(dones.any(axis=0), T - 1 - np.argmax(dones[::-1], axis=0), -1)
        return np.arange(T)[:, None] <= last_end[None, :]

    def episode_time(self) -> np.ndarray:
        """(T, n_envs) index t of each step within its episode, counted from the buffer's start."""
        dones = self.dones
        t_idx = np.zeros(dones.shape, dtype=np.int64)
        running = np.zeros(self.n_envs, dtype=np.int64)
        for t in range(len(dones)):
            t_idx[t] = running
            running = np.where(dones[t], 0, running + 1)
        return t_idx

    def get(self, device: torch.device | str = "cpu", mask: np.ndarray | None = None) -> Batch:
        """The stored steps (those where `mask` is True) flattened to one row per (step, env), as tensors."""
        if self.adv is None or self.ret is None:
            raise RuntimeError("compute_gae() or compute_returns() first")
        T = self.pos
        sel = (lambda a: a[:T][mask]) if mask is not None else (lambda a: a[:T].reshape(T * self.n_envs, *a.shape[2:]))

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(sel(a)), device=device)

        masks = None if self.action_masks is None else tensor(self.action_masks)
        return Batch(tensor(self.obs), tensor(self.actions), tensor(self.logp), tensor(self.values),
                     tensor(self.adv), tensor(self.ret), masks)


def minibatches(batch: Batch, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
    """One pass over `batch` in random order, in chunks of `batch_size` rows (the last may be smaller, as SB3)."""
    n = len(batch.obs)
    perm = torch.as_tensor(rng.permutation(n), device=batch.obs.device)
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        yield Batch(*(None if x is None else x[idx] for x in batch))


# --------------------------------------------------------------------------------------------------
# Collection


class Policy(Protocol):
    """What the Collector needs from a policy (nets.policy.ActorCritic is one)."""

    def step(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None,
             deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions, log pi(actions|obs), V(obs)) for a batch of observations."""
        ...

    def value(self, obs: torch.Tensor) -> torch.Tensor: ...

    # optional: resample_noise(t, n_envs), called before the t-th vector step of each collect() (gSDE)
    # optional: numpy_acting_available() -> bool and numpy_actor() -> an object with step(obs, action_mask) and
    # value(obs) on numpy arrays, valid for one rollout

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Sampled actions -> what the env is stepped with (Box actions clipped to the bounds)."""
        ...


class Collector:
    """Steps a gymnasium vector env with a policy and fills a RolloutBuffer; logs raw returns of finished episodes.

    Observations are normalized (statistics updated) as they arrive when `obs_norm` is given, rewards
    scaled when `reward_norm` is given; what the logger sees is the raw episode score from the env's
    `info["episode"]` (rlkit.vec), never the scaled rewards. The vector env must use SAME_STEP autoreset
    (rlkit.vec.make_vec), so the real final observation of a truncated episode is in `infos["final_obs"]`.
    """

    def __init__(self, env: Any, policy: Policy, device: torch.device | str = "cpu", obs_norm: Any = None,
                 reward_norm: Any = None):
        self.env = env
        self.policy = policy
        self.device = torch.device(device)
        self.obs_norm = obs_norm
        self.reward_norm = reward_norm
        self.obs: np.ndarray | None = None  # the observation the policy acts on next (normalized if obs_norm)
        self.action_masks: np.ndarray | None = None
        self.fresh = False  # True between a reset() and the next step: every env is at an episode's start

    def reset(self, seed: int | None = None) -> None:
        """Start fresh episodes in every env (seeded: env i gets seed + i)."""
        obs, infos = self.env.reset(seed=seed)
        self.obs = self._norm(obs, update=True)
        self.action_masks = infos.get("action_mask")
        if self.reward_norm is not None:
            self.reward_norm.reset()
        self.fresh = True

    def _norm(self, obs: np.ndarray, update: bool) -> np.ndarray:
        return obs if self.obs_norm is None else self.obs_norm(obs, update=update)

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device)

    @torch.no_grad()
    def collect(self, buffer: RolloutBuffer, n_steps: int, step: int = 0, logger: Any = None,
                stop_after_episodes: int | None = None,
                on_episode: Callable[[int, float, int], None] | None = None) -> tuple[int, int]:
        """Add up to `n_steps` vector steps to `buffer` (stopping early once `stop_after_episodes` episodes ended).

        `step` is the env-step counter before collection (for the logger's x axis); each finished episode
        is logged as `logger.episode(step, raw return, length)` and passed to `on_episode`.
        Returns (env steps taken = vector steps x n_envs, episodes finished); sets `buffer.last_values`."""
        if self.obs is None:
            self.reset()
        n_envs = buffer.n_envs
        taken, episodes = 0, 0
        numpy_policy = self.policy.numpy_actor() if getattr(self.policy, "numpy_acting_available",
                                                            lambda: False)() else None  # small CPU MLPs
        resample_noise = getattr(self.policy, "resample_noise", None)  # gSDE's exploration matrices
        for t in range(n_steps):
            self.fresh = False
            if resample_noise is not None:
                resample_noise(t, n_envs)
            if numpy_policy is not None:
                actions, logp, values = numpy_policy.step(self.obs, self.action_masks)
            else:
                masks = None if self.action_masks is None else self._tensor(np.asarray(self.action_masks, dtype=bool))
                actions, logp, values = (x.cpu().numpy() for x in self.policy.step(self._tensor(self.obs), masks))
            next_obs, rewards, terminated, truncated, infos = self.env.step(self.policy.env_actions(actions))
            # the statistics take in this step's observations first, then normalize the real final ones too
            # (VecNormalize's order, so a rollout equals SB3's on the same actions: tests/test_sb3_lockstep.py)
            next_obs = self._norm(next_obs, update=True)
            final_values = final_obs = None
            if truncated.any():  # bootstrap from the observation the env really reached, not the reset one
                idx = np.flatnonzero(truncated)
                final = self._norm(np.stack([infos["final_obs"][i] for i in idx]), update=False)
                final_values = np.zeros(n_envs, dtype=np.float32)
                final_values[idx] = self._value(final, numpy_policy)
                final_obs = (idx, final)
            raw_rewards = np.asarray(rewards, dtype=np.float32)
            if self.reward_norm is not None:
                rewards = self.reward_norm(raw_rewards, terminated | truncated)
            buffer.add(self.obs, actions, logp, values, rewards, terminated, truncated,
                       final_values, None if self.action_masks is None else np.asarray(self.action_masks, dtype=bool),
                       final_obs)
            self.obs = next_obs
            self.action_masks = infos.get("action_mask")
            taken += n_envs
            for _, ret, length in finished_episodes(infos):
                episodes += 1
                if logger is not None:
                    logger.episode(step + taken, ret, length)
                if on_episode is not None:
                    on_episode(step + taken, ret, length)
            if stop_after_episodes is not None and episodes >= stop_after_episodes:
                break
        buffer.last_values[:] = self._value(self.obs, numpy_policy)
        buffer.last_obs = np.array(self.obs)  # a copy: an env may hand out the same array again
        return taken, episodes

    def _value(self, obs: np.ndarray, numpy_policy: Any) -> np.ndarray:
        if numpy_policy is not None:
            return numpy_policy.value(obs)
        return self.policy.value(self._tensor(obs)).cpu().numpy()
