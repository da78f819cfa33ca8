"""linear_cross_entropy with a vocabulary-sharded weight on 8 virtual CPU devices.

The device count of a JAX process is fixed when JAX starts, so the checks run in a child
process started with ``--xla_force_host_platform_device_count=8``: this file is both the
test (parent) and the script (child, ``python this_file.py``). The child compares the
value and gradients of a jitted loss on sharded inputs with the same loss on one device
and prints one JSON line per case.
"""

import json

import numpy as np

from tests._xla import run_on_cpu_devices

CASES = [  # (mesh axis type, mesh shape, tokens sharded too, reduction, chunk_size)
    ("Auto", (8,), False, "mean", 16),
    ("Auto", (8,), False, "none", 16),
    ("Explicit", (8,), False, "mean", 16),
    ("Explicit", (8,), False, "none", 7),
    ("Auto", (2, 4), True, "mean", 6),
    ("Explicit", (2, 4), True, "sum", 8),
]


def _child() -> None:
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import lossjax

    assert jax.device_count() == 8, jax.devices()
    n, d, v = 40, 16, 256
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
    h = jax.random.normal(k1, (n, d), jnp.float32)
    w = jax.random.normal(k2, (d, v), jnp.float32) * 0.5
    y = jax.random.randint(k3, (n,), 0, v).at[0].set(-100)
    cot = jax.random.uniform(k4, (n,), jnp.float32)

    for axis_type, mesh_shape, tokens_sharded, reduction, chunk in CASES:
        names = ("data", "vocab")[-len(mesh_shape):]
        mesh = jax.make_mesh(mesh_shape, names,
                             axis_types=(getattr(AxisType, axis_type),) * len(mesh_shape))

        def loss(h, w, y, cot, reduction=reduction, chunk=chunk):
            out = lossjax.linear_cross_entropy(
                h, w, y, ignore_index=-100, z_loss=1e-3, label_smoothing=0.1,
                chunk_size=chunk, reduction=reduction)
            return jnp.sum(out * cot) if reduction == "none" else out

        step = jax.value_and_grad(loss, (0, 1))
        ref_value, (ref_dh, ref_dw) = jax.jit(step)(h, w, y, cot)

        token_spec = P("data") if tokens_sharded else P()
        put = lambda a, spec, mesh=mesh: jax.device_put(a, NamedSharding(mesh, spec))  # noqa: E731
        args = (put(h, token_spec), put(w, P(None, "vocab")), put(y, token_spec),
                put(cot, token_spec))
        compiled = jax.jit(step).lower(*args).compile()
        value, (dh, dw) = compiled(*args)
        hlo = compiled.as_text()
        print(json.dumps({
            "case": [axis_type, list(mesh_shape), tokens_sharded, reduction, chunk],
            "value": [float(value), float(ref_value)],
            "dh_err": float(jnp.max(jnp.abs(dh - ref_dh)) / jnp.max(jnp.abs(ref_dh))),
            "dw_err": float(jnp.max(jnp.abs(dw - ref_dw)) / jnp.max(jnp.abs(ref_dw))),
            "dw_spec": str(dw.sharding.spec),
            "dw_shard_shape": list(dw.addressable_shards[0].data.shape),
            # The whole weight gathered onto one device would defeat the sharding.
            "gathers_weight": f"f32[{d},{v}]" in hlo and "all-gather" in hlo,
        }))


def test_vocab_sharded_weight_matches_one_device():
    proc = run_on_cpu_devices(__file__, devices=8)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["case"][:4] for r in results] == [
        [a, list(m), t, r] for a, m, t, r, _ in CASES]
    vocab_shards = {(8,): 8, (2, 4): 4}
    for r, (_, mesh_shape, _, _, _) in zip(results, CASES, strict=True):
        np.testing.assert_allclose(*r["value"], rtol=1e-5, err_msg=str(r["case"]))
        assert r["dh_err"] < 1e-5 and r["dw_err"] < 1e-5, r
        assert "vocab" in r["dw_spec"], r
        assert r["dw_shard_shape"] == [16, 256 // vocab_shards[mesh_shape]], r
        assert not r["gathers_weight"], r


if __name__ == "__main__":
    _child()
