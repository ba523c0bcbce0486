"""Replay memory for off-policy agents: numpy storage, vectorized over n envs, n-step returns, prioritized
sampling, and Atari frame de-duplication.

Layout. Each env owns 1/n_envs of the memory: a ring of *transitions* (action, n-step return, m, ...) and a
ring of *frames*. A frame is one observation (frame_stack = 1) or the newest frame of a (k, H, W) stack
(frame_stack = k > 1). A transition does not hold observations: it points at the frame of its obs, and its
next obs is m frames later (frames of one episode are contiguous; each episode also stores its final obs).
Stacks are rebuilt at sample time, repeating the reset frame where the history runs into the episode start,
as gymnasium's FrameStackObservation(padding_type="reset") does. So every frame is stored once:
1M Pong transitions take ~7.5 GB instead of the 28 GB of storing both (4, 84, 84) stacks.

The frame ring is a little longer than the transition ring (1/16 slack, for the one extra final frame per
episode and the k-1 frames of history); a transition whose frames were overwritten anyway (very short
episodes) is dropped from the sampleable set.

n-step (Sutton & Barto 7.1; Hessel et al. 2018): the transition from t carries
R = r_t + g r_{t+1} + ... + g^(m-1) r_{t+m-1}, the obs m steps later and discount g^m, with m = n, or less
when the episode ended first. Termination cuts the return (done = 1: no bootstrap); truncation does not
(done = 0: bootstrap from the real final obs).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rlkit.seeding import generator_from_state, generator_state

FRAME_SLACK = 16  # frame ring = transition ring * (1 + 1/FRAME_SLACK) + a few frames


class Batch(NamedTuple):
    """A sampled minibatch; the TD target is rewards + discounts * (1 - dones) * V(next_obs)."""

    obs: np.ndarray  # (B, *obs_shape)
    actions: np.ndarray  # (B, *action_shape)
    rewards: np.ndarray  # (B,) float32: n-step discounted reward sum (m <= n terms)
    next_obs: np.ndarray  # (B, *obs_shape): the obs m steps later (the real final obs if the episode ended)
    dones: np.ndarray  # (B,) float32: 1 if the episode terminated within those m steps (truncation is not done)
    discounts: np.ndarray  # (B,) float32: gamma ** m
    weights: np.ndarray  # (B,) float32: importance-sampling weights (ones for uniform sampling)
    indices: np.ndarray  # (B,) int64: slots, for PrioritizedReplayBuffer.update_priorities


class ReplayBuffer:
    """Uniform replay memory over n_envs envs, with n-step returns and frame de-duplication (see the module doc)."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: Any, n_envs: int = 1,
                 action_shape: tuple[int, ...] = (), action_dtype: Any = np.int64, n_step: int = 1,
                 gamma: float = 0.99, frame_stack: int = 1, seed: int = 0):
        obs_shape, action_shape = tuple(int(s) for s in obs_shape), tuple(int(s) for s in action_shape)
        if n_envs < 1 or capacity < n_envs:
            raise ValueError(f"capacity={capacity} must hold at least one transition for each of n_envs={n_envs}")
        if not 1 <= n_step <= 255:
            raise ValueError(f"n_step={n_step} must be in 1..255")
        if not 1 <= frame_stack <= 255:
            raise ValueError(f"frame_stack={frame_stack} must be in 1..255")
        if frame_stack > 1 and (len(obs_shape) < 2 or obs_shape[0] != frame_stack):
            raise ValueError(f"frame_stack={frame_stack} needs observations shaped ({frame_stack}, ...), "
                             f"got {obs_shape}")
        self.capacity, self.n_envs, self.n_step, self.gamma = int(capacity), int(n_envs), int(n_step), float(gamma)
        self.obs_shape, self.obs_dtype = obs_shape, np.dtype(obs_dtype)
        self.action_shape, self.action_dtype = action_shape, np.dtype(action_dtype)
        self.frame_stack = k = int(frame_stack)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        frame_shape = obs_shape[1:] if k > 1 else obs_shape
        E = self.n_envs
        self.env_capacity = C = self.capacity // E  # transitions per env
        self.frame_capacity = F = C + C // FRAME_SLACK + k + n_step  # frames per env
        self._gamma_pow = self.gamma ** np.arange(n_step + 1)

        # per-env frame ring; frame number f (counted from 0 per env, never reset) lives in slot f % F
        self.frames = np.zeros((E, F, *frame_shape), self.obs_dtype)
        # per-env transition ring; transition number t lives in slot t % C
        self.t_frame = np.zeros((E, C), np.int64)  # frame number of the obs's newest frame
        self.t_hist = np.zeros((E, C), np.uint8)  # earlier frames of the same episode in the obs stack (<= k-1)
        self.t_m = np.zeros((E, C), np.uint8)  # steps to next_obs (<= n)
        self.t_done = np.zeros((E, C), np.uint8)
        self.t_reward = np.zeros((E, C), np.float32)
        self.t_action = np.zeros((E, C, *action_shape), self.action_dtype)

        # pending steps whose n-step return is not complete yet, in a ring of n slots per env (step s -> slot s % n)
        self.p_frame = np.zeros((E, n_step), np.int64)
        self.p_hist = np.zeros((E, n_step), np.uint8)
        self.p_step = np.full((E, n_step), -1, np.int64)
        self.p_return = np.zeros((E, n_step), np.float64)
        self.p_action = np.zeros((E, n_step, *action_shape), self.action_dtype)
        self.last_obs = np.zeros((E, *obs_shape), self.obs_dtype)  # the next_obs of the last add, to check continuity

        self.n_frames = np.zeros(E, np.int64)  # frames written per env
        self.n_trans = np.zeros(E, np.int64)  # transitions written per env
        self.first_valid = np.zeros(E, np.int64)  # oldest sampleable transition number per env
        self.step_id = np.zeros(E, np.int64)  # steps added per env (numbers the pending slots)
        self.first_pending = np.zeros(E, np.int64)  # step number of the oldest pending step
        self.episode_step = np.zeros(E, np.int64)  # steps so far in the current episode
        self.cur_frame = np.zeros(E, np.int64)  # frame number of the current obs's newest frame
        self.new_episode = np.ones(E, bool)  # the next add's obs starts an episode

    # -- adding -----------------------------------------------------------------------------------
    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        """Store one step of every env (leading dim n_envs). next_obs[i] is the obs env i really reached:
        its final obs if the episode just ended (before any autoreset).

        If obs[i] is not the previous next_obs[i] without an episode end in between (e.g. the envs were reset
        after resuming from a checkpoint), env i's episode is taken as cut there: a truncation.
        """
        E, k, n = self.n_envs, self.frame_stack, self.n_step
        obs, next_obs = self._check_obs(obs, "obs"), self._check_obs(next_obs, "next_obs")
        actions = np.asarray(actions, self.action_dtype).reshape(E, *self.action_shape)
        rewards = np.asarray(rewards, np.float64).reshape(E)
        terminated = np.asarray(terminated, bool).reshape(E)
        ended = terminated | np.asarray(truncated, bool).reshape(E)
        env = np.arange(E)

        # validate before changing anything, so a refused add leaves the memory as it was
        cut = ~self.new_episode & ~(obs == self.last_obs).reshape(E, -1).all(1)
        start = np.flatnonzero(self.new_episode | cut)
        if k > 1 and not (obs[start, :-1] == obs[start, -1:]).all():
            raise ValueError(f"frame_stack={k}: an episode's first obs must repeat its reset frame {k} times "
                             "(FrameStackObservation padding_type='reset'); use frame_stack=1 for other obs")
        if k > 1 and not (next_obs[:, :-1] == obs[:, 1:]).all():
            raise ValueError(f"frame_stack={k}: consecutive obs must share {k - 1} frames (a frame-stack wrapper's "
                             "output, oldest first); use frame_stack=1 for other obs")

        if cut.any():
            self._flush(np.flatnonzero(cut), np.zeros(int(cut.sum()), bool))
        if start.size:
            self.cur_frame[start] = self._write_frames(start, self._newest(obs[start]))
            self.episode_step[start] = 0

        s = self.step_id.copy()
        if n == 1:  # every step is a whole transition at once: straight into the transition ring
            self._store_one_step(actions, rewards, terminated)
            self.p_step[:, 0] = s
        else:  # push this step, then add its reward to every pending return: R_s += gamma^(now - s) r
            slot = s % n
            self.p_frame[env, slot] = self.cur_frame
            self.p_hist[env, slot] = np.minimum(self.episode_step, k - 1)
            self.p_action[env, slot] = actions
            self.p_step[env, slot] = s
            self.p_return[env, slot] = 0.0
            pending = self.p_step >= self.first_pending[:, None]
            age = np.where(pending, s[:, None] - self.p_step, 0)
            self.p_return += np.where(pending, self._gamma_pow[age] * rewards[:, None], 0.0)

        self.cur_frame[:] = self._write_frames(env, self._newest(next_obs))
        self.last_obs[:] = next_obs
        self.episode_step += 1
        self.step_id += 1

        if n == 1:
            self.first_pending[:] = self.step_id
        else:  # steps with n rewards are complete; an episode end completes all of that env's pending steps
            full = np.flatnonzero(~ended & (s - self.first_pending + 1 >= n))
            if full.size:
                self._emit(full, self.first_pending[full] % n, np.zeros(full.size, bool))
                self.first_pending[full] += 1
            if ended.any():
                self._flush(np.flatnonzero(ended), terminated[ended])
        self.new_episode[:] = ended
        self._drop_overwritten()

    def _store_one_step(self, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray) -> None:
        """n = 1: this step of every env is a complete transition (next obs one frame on, done = terminated),
        written as _emit would. Each add then writes one transition per env, so all envs share one ring slot
        and plain slicing replaces fancy indexing (about half the cost of an add for one env)."""
        slot = int(self.n_trans[0]) % self.env_capacity
        self.t_frame[:, slot] = self.cur_frame
        self.t_hist[:, slot] = np.minimum(self.episode_step, self.frame_stack - 1)
        self.t_m[:, slot] = 1
        self.t_done[:, slot] = terminated
        self.t_reward[:, slot] = rewards
        self.t_action[:, slot] = actions
        self.n_trans += 1
        self._on_new(np.arange(self.n_envs) * self.env_capacity + slot)

    def _check_obs(self, x: Any, name: str) -> np.ndarray:
        x = np.asarray(x)
        if x.shape != (self.n_envs, *self.obs_shape):
            raise ValueError(f"{name} has shape {x.shape}; expected (n_envs, *obs_shape) = "
                             f"{(self.n_envs, *self.obs_shape)}")
        return x

    def _newest(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, -1] if self.frame_stack > 1 else obs

    def _write_frames(self, env: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Append one frame to each env's ring (envs distinct); returns their frame numbers."""
        num = self.n_frames[env].copy()
        self.frames[env, num % self.frame_capacity] = frames
        self.n_frames[env] += 1
        return num

    def _flush(self, envs: np.ndarray, done: np.ndarray) -> None:
        """Complete all pending steps of `envs` (an episode ended: terminated where `done`, else truncated)."""
        e, j = np.nonzero(self.p_step[envs] >= self.first_pending[envs, None])
        if e.size:
            order = np.lexsort((self.p_step[envs[e], j], e))  # oldest first within each env
            e, j = e[order], j[order]
            self._emit(envs[e], j, done[e], rank=np.arange(e.size) - np.searchsorted(e, e))
        self.first_pending[envs] = self.step_id[envs]

    def _emit(self, env: np.ndarray, j: np.ndarray, done: np.ndarray, rank: np.ndarray | int = 0) -> None:
        """Move pending slots j of `env` into the transition ring (`rank`: order among items of the same env,
        oldest first). Their next obs is the env's current frame: m = (step count) - (their step number)."""
        num = self.n_trans[env] + rank
        slot = num % self.env_capacity
        self.t_frame[env, slot] = self.p_frame[env, j]
        self.t_hist[env, slot] = self.p_hist[env, j]
        self.t_m[env, slot] = self.step_id[env] - self.p_step[env, j]
        self.t_done[env, slot] = done
        self.t_reward[env, slot] = self.p_return[env, j]
        self.t_action[env, slot] = self.p_action[env, j]
        self.n_trans += np.bincount(env, minlength=self.n_envs)
        self._on_new(env * self.env_capacity + slot)

    def _drop_overwritten(self) -> None:
        """Advance first_valid past transitions overwritten in the transition ring or missing frames."""
        C = self.env_capacity
        if 2 * int(self.step_id[0]) <= C:  # each step adds <= 1 transition and <= 2 frames per env (C <= F)
            return  # neither ring has wrapped yet: nothing was overwritten
        self.first_valid = np.maximum(self.first_valid, self.n_trans - C)
        env = np.arange(self.n_envs)
        oldest_kept = self.n_frames - self.frame_capacity
        while True:  # oldest-needed frame numbers grow with transition number: only the first can be stale
            slot = self.first_valid % C
            stale = (self.first_valid < self.n_trans) & (self.t_frame[env, slot] - self.t_hist[env, slot] < oldest_kept)
            if not stale.any():
                return
            self._on_invalid(env[stale] * C + slot[stale])
            self.first_valid[stale] += 1

    def _on_new(self, idx: np.ndarray) -> None:
        """Hook: transitions just written at flat slots idx."""

    def _on_invalid(self, idx: np.ndarray) -> None:
        """Hook: transitions at flat slots idx can no longer be sampled."""

    # -- sampling ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Transitions that can be sampled."""
        return int((self.n_trans - self.first_valid).sum())

    def sample(self, batch_size: int) -> Batch:
        """batch_size transitions drawn uniformly (with replacement) from the sampleable ones."""
        counts = self.n_trans - self.first_valid
        total = int(counts.sum())
        if total == 0:
            raise ValueError("cannot sample from an empty replay memory; add transitions first")
        u = self.rng.integers(0, total, batch_size)
        ends = np.cumsum(counts)
        env = np.searchsorted(ends, u, side="right")
        num = self.first_valid[env] + u - (ends[env] - counts[env])
        idx = env * self.env_capacity + num % self.env_capacity
        return self._batch(idx, np.ones(batch_size, np.float32))

    def _batch(self, idx: np.ndarray, weights: np.ndarray) -> Batch:
        """Gather the transitions at flat slots idx and rebuild their observations."""
        env, slot = np.divmod(idx, self.env_capacity)
        frame, hist, m = self.t_frame[env, slot], self.t_hist[env, slot].astype(np.int64), self.t_m[env, slot]
        k, F = self.frame_stack, self.frame_capacity
        # obs stack position j holds frame f - min(k-1-j, hist): the reset frame repeats where history runs out;
        # next_obs is the same with f + m and min(hist + m, k-1)
        back = np.arange(k - 1, -1, -1)
        newest = np.stack([frame, frame + m])[..., None]  # (2, B, 1)
        hists = np.stack([hist, np.minimum(hist + m, k - 1)])[..., None]
        rows = (env * F)[:, None] + (newest - np.minimum(back, hists)) % F  # (2, B, k)
        flat = self.frames.reshape(self.n_envs * F, *self.frames.shape[2:])
        # one gather into one array: two separate ~1 MB results cost page faults when malloc trims its heap
        both = flat[rows] if k > 1 else flat[rows[..., 0]]
        return Batch(
            obs=both[0],
            actions=self.t_action[env, slot],
            rewards=self.t_reward[env, slot],
            next_obs=both[1],
            dones=self.t_done[env, slot].astype(np.float32),
            discounts=self._gamma_pow[m].astype(np.float32),
            weights=weights,
            indices=idx.astype(np.int64),
        )

    # -- state ------------------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes held by all storage arrays."""
        return sum(a.nbytes for a in self._arrays().values())

    def _arrays(self) -> dict[str, np.ndarray]:
        names = ["frames", "t_frame", "t_hist", "t_m", "t_done", "t_reward", "t_action", "p_frame", "p_hist",
                 "p_step", "p_return", "p_action", "last_obs", "n_frames", "n_trans", "first_valid", "step_id",
                 "first_pending", "episode_step", "cur_frame", "new_episode"]
        return {name: getattr(self, name) for name in names}

    def _config(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "obs_shape": list(self.obs_shape), "obs_dtype": str(self.obs_dtype),
                "n_envs": self.n_envs, "action_shape": list(self.action_shape),
                "action_dtype": str(self.action_dtype), "n_step": self.n_step, "gamma": self.gamma,
                "frame_stack": self.frame_stack}

    def state_dict(self) -> dict[str, Any]:
        """The whole memory as numpy arrays and plain data. Large arrays are views (serialize before the next
        add) cut to their written part, so an early checkpoint of a big memory stays small."""
        arrays = self._arrays()
        arrays["frames"] = self.frames[:, : int(min(self.n_frames.max(), self.frame_capacity))]
        used = int(min(self.n_trans.max(), self.env_capacity))
        for name in ("t_frame", "t_hist", "t_m", "t_done", "t_reward", "t_action"):
            arrays[name] = arrays[name][:, :used]
        return {"config": self._config(), "arrays": arrays, "rng": generator_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state_dict (arrays may be numpy arrays or CPU tensors); the config must match."""
        if dict(state["config"]) != self._config():
            diff = {k: (v, state["config"].get(k)) for k, v in self._config().items() if state["config"].get(k) != v}
            raise ValueError(f"replay state does not fit this memory: (this, saved) = {diff}")
        for name, a in state["arrays"].items():
            dest = getattr(self, name)
            a = np.asarray(a)
            if name == "frames" or name.startswith("t_"):
                dest[:, : a.shape[1]] = a
                dest[:, a.shape[1]:] = 0
            else:
                dest[...] = a
        self.rng = generator_from_state(state["rng"])


class SumTree:
    """Array-backed binary sum tree (and a min tree beside it) over `capacity` non-negative values:
    O(log n) vectorized updates and prefix-sum search, for proportional prioritized sampling."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.size = 1 << max(0, (self.capacity - 1).bit_length())  # leaves: a power of two >= capacity
        self.depth = self.size.bit_length() - 1
        self.hop = 4  # levels per step of the fast search
        self.sums = np.zeros(2 * self.size, np.float64)  # node i has children 2i, 2i+1; leaf j is node size + j
        self.mins = np.full(2 * self.size, np.inf, np.float64)  # min over positive values (inf: none)

    def update(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set values[i] at leaf idx[i] (0 means empty: never found, ignored by min) and fix the ancestors."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        values = np.broadcast_to(np.asarray(values, np.float64), idx.shape)
        if idx.size == 0:
            return
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise ValueError("sum-tree values must be finite and >= 0")
        if idx.min() < 0 or idx.max() >= self.capacity:
            raise IndexError(f"sum-tree index out of range 0..{self.capacity - 1}")
        node = idx + self.size
        self.sums[node] = values
        self.mins[node] = np.where(values > 0, values, np.inf)
        sum_pairs, min_pairs = self.sums.reshape(-1, 2), self.mins.reshape(-1, 2)  # row i: children of node i
        for _ in range(self.depth):
            node = node >> 1
            if node.size > 64:
                node = np.unique(node)
            c, m = sum_pairs[node], min_pairs[node]
            self.sums[node] = c[:, 0] + c[:, 1]
            self.mins[node] = np.minimum(m[:, 0], m[:, 1])

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """For each prefix sum in [0, total), the leaf i with sum(values[:i]) <= prefix < sum(values[:i+1]).
        Never returns a zero leaf (rounding at the right edge falls back to the last positive leaf)."""
        prefix = np.array(prefix, np.float64).reshape(-1)
        leaf = self._descend(prefix, guard=False)
        bad = self.sums[leaf + self.size] <= 0  # rounding let a prefix run past its subtree's sum: rare
        if bad.any():
            leaf[bad] = self._descend(prefix[bad], guard=True)
        return leaf

    def _descend(self, prefix: np.ndarray, guard: bool) -> np.ndarray:
        """Walk down from the root. The fast walk (guard=False) goes `hop` levels at a time: the descendants of
        node i that lie r levels down are the contiguous nodes i*2^r ... (i+1)*2^r - 1, so a cumulative sum
        over that block picks the one to enter. The guarded walk goes one level at a time and never enters
        an empty right subtree."""
        node = np.ones(prefix.shape, np.int64)
        depth = self.depth
        while depth > 0:
            r = 1 if guard else min(self.hop, depth)
            block = self.sums.reshape(-1, 1 << r)[node]  # (B, 2^r) descendants r levels down
            if guard:
                right = (prefix >= block[:, 0]) & (block[:, 1] > 0)
                prefix = prefix - block[:, 0] * right
                node = 2 * node + right
            else:
                cum = np.cumsum(block, axis=1)
                child = np.minimum((cum <= prefix[:, None]).sum(1), (1 << r) - 1)
                prefix = prefix - np.where(child > 0, cum[np.arange(len(node)), child - 1], 0.0)
                node = (node << r) + child
            depth -= r
        return node - self.size

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return self.sums[np.asarray(idx) + self.size]

    @property
    def total(self) -> float:
        return float(self.sums[1])

    @property
    def min(self) -> float:
        """Smallest positive value (inf when all are zero)."""
        return float(self.mins[1])

    @property
    def nbytes(self) -> int:
        return self.sums.nbytes + self.mins.nbytes


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016): P(i) = p_i / sum_k p_k with p = (|td| + eps)^alpha,
    importance weights (N P(i))^-beta normalized by their maximum over the buffer. The agent anneals `beta`."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: Any, n_envs: int = 1,
                 action_shape: tuple[int, ...] = (), action_dtype: Any = np.int64, n_step: int = 1,
                 gamma: float = 0.99, frame_stack: int = 1, seed: int = 0, alpha: float = 0.6, beta: float = 0.4,
                 eps: float = 1e-6):
        super().__init__(capacity, obs_shape, obs_dtype, n_envs, action_shape, action_dtype, n_step, gamma,
                         frame_stack, seed)
        if eps <= 0:
            raise ValueError(f"eps={eps} must be > 0: a zero priority marks an empty slot and is never sampled")
        self.alpha, self.beta, self.eps = float(alpha), float(beta), float(eps)
        self.tree = SumTree(self.n_envs * self.env_capacity)
        self.max_priority = 1.0  # new transitions get the largest priority seen, so each is replayed soon (3.3)

    def _on_new(self, idx: np.ndarray) -> None:
        self.tree.update(idx, self.max_priority)

    def _on_invalid(self, idx: np.ndarray) -> None:
        self.tree.update(idx, 0.0)

    def sample(self, batch_size: int) -> Batch:
        """Stratified proportional sampling: one prefix sum drawn uniformly in each of batch_size equal
        segments of [0, total) (Schaul et al. 2016, appendix B.2.1)."""
        total = self.tree.total
        if len(self) == 0 or total <= 0:
            raise ValueError("cannot sample from an empty replay memory; add transitions first")
        prefix = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        idx = self.tree.find(np.minimum(prefix, np.nextafter(total, 0)))
        # w_i / max_j w_j = ((N P_i) / (N P_min))^-beta = (p_i / p_min)^-beta
        weights = (self.tree[idx] / self.tree.min) ** -self.beta
        return self._batch(idx, weights.astype(np.float32))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """p = (|td| + eps)^alpha for the sampled slots (slots dropped since sampling stay dropped)."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        p = (np.abs(np.asarray(td_errors, np.float64).reshape(-1)) + self.eps) ** self.alpha
        live = self.tree[indices] > 0
        self.tree.update(indices[live], p[live])
        if live.any():
            self.max_priority = max(self.max_priority, float(p[live].max()))

    @property
    def nbytes(self) -> int:
        return super().nbytes + self.tree.nbytes

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["priorities"] = self.tree.sums[self.tree.size : self.tree.size + self.tree.capacity]
        state["per"] = {"max_priority": self.max_priority, "alpha": self.alpha, "beta": self.beta, "eps": self.eps}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.tree = SumTree(self.tree.capacity)
        self.tree.update(np.arange(self.tree.capacity), np.asarray(state["priorities"], np.float64))
        per = state["per"]
        self.max_priority, self.alpha = float(per["max_priority"]), float(per["alpha"])
        self.beta, self.eps = float(per["beta"]), float(per["eps"])
