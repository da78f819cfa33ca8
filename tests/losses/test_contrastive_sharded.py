"""CLIP and SigLIP with the batch split over 8 virtual CPU devices (``shard_map``).

The device count of a JAX process is fixed when JAX starts, so the checks run in a child
process started with ``--xla_force_host_platform_device_count=8``: this file is both the
test (parent) and the script (child, ``python this_file.py``). The child compares the
value and the gradients (embeddings, logit_scale, logit_bias) of the sharded loss with
the dense loss on one device and prints one JSON line per case.
"""

import json

import numpy as np

from tests._xla import run_on_cpu_devices

CASES = [  # (loss, block_size, reduction, masked); 5 rows per device
    ("clip", None, "mean", False),
    ("clip", 3, "none", True),
    ("siglip", 2, "mean", True),
    ("siglip", 3, "sum", False),
]


def _child() -> None:
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType
    from jax.sharding import PartitionSpec as P

    import lossjax

    assert jax.device_count() == 8, jax.devices()
    n, d = 40, 8
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    a = jax.random.normal(k1, (n, d), jnp.float32) / 3
    b = jax.random.normal(k2, (n, d), jnp.float32) / 3 + 0.5 * a
    cot = jax.random.uniform(k3, (n,), jnp.float32)
    mask = jnp.arange(n) % 7 != 3
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))

    for name, block, reduction, masked in CASES:
        fn = lossjax.clip_loss if name == "clip" else lossjax.siglip_loss

        def loss(a, b, s, t, cot, where, block=block, axis_name=None, fn=fn,
                 reduction=reduction, masked=masked):
            extra = {"logit_bias": t} if fn is lossjax.siglip_loss else {}
            out = fn(a, b, logit_scale=s, block_size=block, axis_name=axis_name,
                     where=where if masked else None, reduction=reduction, **extra)
            return jnp.sum(out * cot) if reduction == "none" else out

        # "none": each device returns its partial Σ cot·loss, added up outside.
        per_device = jax.shard_map(
            lambda *x, loss=loss: jnp.reshape(loss(*x, axis_name="data"), (1,)), mesh=mesh,
            in_specs=(P("data"), P("data"), P(), P(), P("data"), P("data")),
            out_specs=P("data") if reduction == "none" else P())

        def sharded_loss(*x, f=per_device, reduction=reduction):
            return jnp.sum(f(*x)) if reduction == "none" else f(*x)[0]

        args = (a, b, jnp.float32(5.0), jnp.float32(-2.0), cot, mask)
        ref_value, ref_grads = jax.jit(jax.value_and_grad(
            lambda *x, loss=loss: loss(*x[:4], *x[4:]), (0, 1, 2, 3)))(*args)
        value, grads = jax.jit(jax.value_and_grad(sharded_loss, (0, 1, 2, 3)))(*args)
        errs = [float(jnp.max(jnp.abs(g - r)) / jnp.maximum(jnp.max(jnp.abs(r)), 1e-30))
                for g, r in zip(grads, ref_grads, strict=True)]
        print(json.dumps({"case": [name, block, reduction, masked],
                          "value": [float(value), float(ref_value)], "grad_errs": errs,
                          "bias_grad": float(grads[3])}))


def test_batch_sharded_loss_matches_one_device():
    proc = run_on_cpu_devices(__file__, devices=8)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["case"] for r in results] == [list(c) for c in CASES]
    for r in results:
        np.testing.assert_allclose(*r["value"], rtol=1e-5, err_msg=str(r["case"]))
        errs = r["grad_errs"] if r["case"][0] == "siglip" else r["grad_errs"][:3]
        assert max(errs) < 1e-5, r
        if r["case"][0] == "clip":
            assert r["bias_grad"] == 0.0, r


if __name__ == "__main__":
    _child()
