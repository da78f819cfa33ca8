"""PPO on gymnax's CartPole-v1, trained with lossjax's RL losses and optimizers.

    python -m lossjax.examples.ppo_cartpole                 # default settings: 524,288 steps
    python -m lossjax.examples.ppo_cartpole --total-steps 200000 --seed 1

Proximal Policy Optimization (Schulman et al., 2017) in the PureJaxRL style: the
environments are vectorised with ``vmap``, each rollout is a ``lax.scan``, and the whole
training loop (every rollout, every epoch, every minibatch) runs inside one ``jax.jit``. The
pieces from lossjax are :func:`lossjax.generalized_advantage_estimation`,
:func:`lossjax.clipped_surrogate_loss`, :func:`lossjax.clipped_value_loss`,
:func:`lossjax.entropy_loss` (the entropy bonus) and ``lossjax.adam`` behind
``lossjax.clip_by_global_norm``. Progress is printed once per update from inside the jit
(``jax.debug.callback``); then the training throughput (environment steps per second,
compilation excluded), and last the greedy policy's mean return over ``--eval-episodes``
fresh episodes (500 is the maximum).

Episodes cut by CartPole's 500-step time limit are not failures: such a step bootstraps
from the value of the state it reached (folded into its reward) instead of being treated
as terminal, as a careful PPO implementation does.

Needs gymnax: ``pip install "lossjax[rl]"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax

Layer = dict[str, jax.Array]
Params = dict[str, list[Layer]]
INSTALL_HINT = 'This example needs gymnax: pip install "lossjax[rl]"'


@dataclasses.dataclass(frozen=True)
class Config:
    """PPO hyperparameters: PureJaxRL's CartPole settings with 16 environments (fewer, larger
    updates suit a CPU) and a learning rate of 1e-3 to match."""

    total_steps: int = 524_288
    num_envs: int = 16
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_epsilon: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    hidden: int = 64

    @property
    def num_updates(self) -> int:
        return self.total_steps // (self.num_envs * self.num_steps)

    @property
    def minibatch_size(self) -> int:
        return self.num_envs * self.num_steps // self.num_minibatches


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    discount: jax.Array


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


# --- the network: separate actor and critic MLPs, tanh, orthogonal initialisation ----------


def _dense(key: jax.Array, n_in: int, n_out: int, scale: float) -> Layer:
    return {"w": jax.nn.initializers.orthogonal(scale)(key, (n_in, n_out)),
            "b": jnp.zeros(n_out)}


def init_params(key: jax.Array, obs_dim: int, num_actions: int, hidden: int) -> Params:
    """Actor ``obs → 64 → 64 → logits`` and critic ``obs → 64 → 64 → value``."""
    keys = jax.random.split(key, 6)
    root2 = float(np.sqrt(2.0))
    return {
        "actor": [_dense(keys[0], obs_dim, hidden, root2), _dense(keys[1], hidden, hidden, root2),
                  _dense(keys[2], hidden, num_actions, 0.01)],
        "critic": [_dense(keys[3], obs_dim, hidden, root2),
                   _dense(keys[4], hidden, hidden, root2), _dense(keys[5], hidden, 1, 1.0)],
    }


def _mlp(layers: list[Layer], x: jax.Array) -> jax.Array:
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def policy_and_value(params: Params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Action logits ``[..., A]`` and state values ``[...]``."""
    return _mlp(params["actor"], obs), _mlp(params["critic"], obs)[..., 0]


# --- training ------------------------------------------------------------------------------


def _log_prob(logits: jax.Array, actions: jax.Array) -> jax.Array:
    log_probs = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_probs, actions[..., None], axis=-1)[..., 0]


def ppo_loss(params: Params, batch: Batch, config: Config) -> tuple[jax.Array, dict]:
    """Clipped surrogate + value_coef · clipped value loss + entropy_coef · (−entropy)."""
    logits, values = policy_and_value(params, batch.obs)
    ratios = jnp.exp(_log_prob(logits, batch.action) - batch.log_prob)
    advantages = (batch.advantage - batch.advantage.mean()) / (batch.advantage.std() + 1e-8)
    actor = lossjax.clipped_surrogate_loss(ratios, advantages, epsilon=config.clip_epsilon)
    critic = lossjax.clipped_value_loss(values, batch.value, batch.target,
                                        epsilon=config.clip_epsilon)
    entropy = lossjax.entropy_loss(logits)
    total = actor + config.value_coef * critic + config.entropy_coef * entropy
    return total, {"actor": actor, "critic": critic, "entropy": -entropy}


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """``clip_by_global_norm`` then Adam, the learning rate annealed linearly to 0."""
    learning_rate: float | Callable[[jax.Array], jax.Array] = config.learning_rate
    if config.anneal_lr:
        steps_per_update = config.update_epochs * config.num_minibatches

        def annealed(count: jax.Array) -> jax.Array:
            done = (count // steps_per_update) / config.num_updates
            return config.learning_rate * (1.0 - done)

        learning_rate = annealed

    return optax.chain(lossjax.clip_by_global_norm(config.max_grad_norm),
                       lossjax.adam(learning_rate, eps=1e-5))


def make_env() -> tuple[Any, Any]:
    import gymnax

    return gymnax.make("CartPole-v1")


def _step_envs(env: Any, env_params: Any, keys: jax.Array, states: Any, actions: jax.Array):
    return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, states, actions, env_params)


def make_train(config: Config, *, report: Callable[..., None] | None = None
               ) -> Callable[[jax.Array], tuple[Params, dict[str, jax.Array]]]:
    """``train(key) -> (params, metrics)``: the whole PPO run, to be wrapped in ``jax.jit``.

    ``metrics["episode_return"][u]`` is the mean return of the episodes that ended during
    update ``u``'s rollout (NaN if none ended). ``report(update, steps, episode_return,
    losses)`` is called on the host once per update when given.
    """
    env, env_params = make_env()
    num_actions = env.action_space(env_params).n
    obs_dim = env.observation_space(env_params).shape[0]
    optimizer = make_optimizer(config)

    def rollout(params, env_state, obs, episode_return, key):
        def step(carry, key):
            env_state, obs, episode_return = carry
            action_key, env_key = jax.random.split(key)
            logits, value = policy_and_value(params, obs)
            action = jax.random.categorical(action_key, logits)
            next_obs, env_state, reward, terminated, truncated, info = _step_envs(
                env, env_params, jax.random.split(env_key, config.num_envs), env_state, action)
            done = terminated | truncated
            # A time limit is not a terminal state: bootstrap from where the episode got to.
            _, final_value = policy_and_value(params, info["final_observation"])
            cut = truncated & ~terminated
            reward_plus = reward + config.gamma * jnp.where(cut, final_value, 0.0)
            discount = config.gamma * (1.0 - done)
            episode_return = episode_return + reward
            finished = (jnp.where(done, episode_return, 0.0), done)
            episode_return = jnp.where(done, 0.0, episode_return)
            transition = Transition(obs, action, _log_prob(logits, action), value,
                                    reward_plus, discount)
            return (env_state, next_obs, episode_return), (transition, finished)

        keys = jax.random.split(key, config.num_steps)
        (env_state, obs, episode_return), (traj, (returns, dones)) = jax.lax.scan(
            step, (env_state, obs, episode_return), keys)
        mean_return = jnp.sum(returns) / jnp.sum(dones)
        return env_state, obs, episode_return, traj, mean_return

    def learn(params, opt_state, traj, last_obs, key):
        _, last_value = policy_and_value(params, last_obs)
        values = jnp.concatenate([traj.value, last_value[None]])
        advantages = lossjax.generalized_advantage_estimation(
            traj.reward, traj.discount, values, lambda_=config.gae_lambda)
        batch = Batch(traj.obs, traj.action, traj.log_prob, traj.value, advantages,
                      advantages + traj.value)
        flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batch)

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            (_, losses), grads = jax.value_and_grad(ppo_loss, has_aux=True)(
                params, minibatch, config)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), losses

        def epoch(carry, key):
            order = jax.random.permutation(key, config.num_envs * config.num_steps)
            minibatches = jax.tree.map(
                lambda x: x[order].reshape(config.num_minibatches, -1, *x.shape[1:]), flat)
            return jax.lax.scan(minibatch_step, carry, minibatches)

        (params, opt_state), losses = jax.lax.scan(
            epoch, (params, opt_state), jax.random.split(key, config.update_epochs))
        return params, opt_state, jax.tree.map(jnp.mean, losses)

    def train(key: jax.Array) -> tuple[Params, dict[str, jax.Array]]:
        init_key, reset_key, key = jax.random.split(key, 3)
        params = init_params(init_key, obs_dim, num_actions, config.hidden)
        opt_state = optimizer.init(params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, config.num_envs), env_params)

        def update(carry, inputs):
            params, opt_state, env_state, obs, episode_return = carry
            index, key = inputs
            rollout_key, learn_key = jax.random.split(key)
            env_state, last_obs, episode_return, traj, mean_return = rollout(
                params, env_state, obs, episode_return, rollout_key)
            params, opt_state, losses = learn(params, opt_state, traj, last_obs, learn_key)
            if report is not None:
                steps = (index + 1) * config.num_envs * config.num_steps
                jax.debug.callback(report, index, steps, mean_return, losses)
            carry = (params, opt_state, env_state, last_obs, episode_return)
            return carry, {"episode_return": mean_return, **losses}

        carry = (params, opt_state, env_state, obs, jnp.zeros(config.num_envs))
        inputs = (jnp.arange(config.num_updates), jax.random.split(key, config.num_updates))
        (params, *_), metrics = jax.lax.scan(update, carry, inputs)
        return cast(Params, params), metrics

    return train


def evaluate(params: Params, key: jax.Array, episodes: int = 32) -> jax.Array:
    """Mean return of the greedy (argmax) policy over ``episodes`` fresh episodes."""
    env, env_params = make_env()
    reset_key, key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(reset_key, episodes), env_params)

    def step(carry, key):
        state, obs, total, running = carry
        logits, _ = policy_and_value(params, obs)
        obs, state, reward, terminated, truncated, _ = _step_envs(
            env, env_params, jax.random.split(key, episodes), state, jnp.argmax(logits, -1))
        total = total + jnp.where(running, reward, 0.0)
        return (state, obs, total, running & ~(terminated | truncated)), None

    carry = (state, obs, jnp.zeros(episodes), jnp.ones(episodes, bool))
    keys = jax.random.split(key, env_params.max_steps_in_episode)
    (_, _, total, _), _ = jax.lax.scan(step, carry, keys)
    return jnp.mean(total)


def _print_progress(config: Config) -> Callable[..., None]:
    def report(index, steps, episode_return, losses) -> None:
        print(f"update {int(index) + 1:4d}/{config.num_updates}  steps {int(steps):8d}  "
              f"episode return {float(episode_return):6.1f}  "
              f"actor {float(losses['actor']):+.3f}  critic {float(losses['critic']):7.3f}  "
              f"entropy {float(losses['entropy']):.3f}", flush=True)

    return report


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Config()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=defaults.total_steps)
    parser.add_argument("--num-envs", type=int, default=defaults.num_envs)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--quiet", action="store_true", help="no per-update lines")
    args = parser.parse_args(argv)
    try:
        import gymnax  # noqa: F401
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    config = dataclasses.replace(defaults, total_steps=args.total_steps, num_envs=args.num_envs,
                                 learning_rate=args.learning_rate)
    if config.num_updates < 1:
        parser.error("--total-steps must cover at least one update "
                     f"(num_envs × {config.num_steps} steps)")
    train = jax.jit(make_train(config, report=None if args.quiet else _print_progress(config)))
    key = jax.random.key(args.seed)
    start = time.perf_counter()
    compiled = train.lower(key).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    params, _ = jax.block_until_ready(compiled(key))
    train_s = time.perf_counter() - start
    steps = config.num_updates * config.num_envs * config.num_steps
    print(f"compiled in {compile_s:.1f} s; trained {steps} env steps in {train_s:.1f} s "
          f"({steps / train_s:,.0f} env steps/s)")
    score = evaluate(params, jax.random.key(args.seed + 1), args.eval_episodes)
    print(f"mean evaluation return: {float(score):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
