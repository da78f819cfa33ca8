"""Mixture-of-experts router losses: groups of ``T`` tokens routed over ``E`` experts."""

from tests.losses._registry import Sample, distribution, floats, int_labels

SAMPLES = [
    # Two groups of three tokens over four experts; expert_indices [G, T] (top-1).
    Sample("load_balancing_loss", (distribution(240, 2, 3, 4), int_labels(241, 4, 2, 3)),
           kwargs={"num_experts": 4}, mismatch=(1, 0),
           skip={"where": "where masks tokens ([G, T]: padding), not groups; the check's "
                          "per-group mask has the group shape [G]; test_moe checks the "
                          "token mask with NaN in the masked tokens"}),
    Sample("router_z_loss", (floats(242, 3, 4),),
           skip={"shapes": "one input: there is no second shape to mismatch"}),
]
