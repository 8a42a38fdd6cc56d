"""Differential privacy: RDP accounting of the sampled Gaussian mechanism with a budget,
Gaussian/Laplace mechanisms on an exact discrete sampler, clipping, local and central DP.

See ``docs/privacy.md`` for how to choose epsilon and delta.
"""

from vfl.privacy._accountant import (
    BudgetExceeded,
    BudgetPolicy,
    GaussianRound,
    PrivacyBudget,
    RdpAccountant,
    RoundReport,
    epsilon_across_jobs,
)
from vfl.privacy._clipping import AdaptiveClipper, clip_l2, split_noise_multiplier
from vfl.privacy._mechanisms import (
    InsecureNoiseWarning,
    add_gaussian_noise,
    add_laplace_noise,
    central_dp,
    gaussian_delta,
    gaussian_sigma,
    laplace_scale,
    local_dp,
    randomized_response,
    randomized_response_keep_probability,
)
from vfl.privacy._rdp import (
    DEFAULT_ORDERS,
    delta_from_rdp,
    epsilon_for_plan,
    epsilon_from_rdp,
    noise_for_epsilon,
    rdp_gaussian,
    rdp_sampled_gaussian,
)
from vfl.privacy._sampler import (
    bernoulli_exp,
    discrete_gaussian,
    discrete_gaussian_array,
    discrete_laplace,
    discrete_laplace_array,
)

__all__ = [
    "ACCOUNTANTS",
    "AdaptiveClipper",
    "BudgetExceeded",
    "BudgetPolicy",
    "DEFAULT_ORDERS",
    "InsecureNoiseWarning",
    "PrivacyBudget",
    "RdpAccountant",
    "GaussianRound",
    "RoundReport",
    "add_gaussian_noise",
    "add_laplace_noise",
    "bernoulli_exp",
    "central_dp",
    "clip_l2",
    "delta_from_rdp",
    "discrete_gaussian",
    "discrete_gaussian_array",
    "discrete_laplace",
    "discrete_laplace_array",
    "epsilon_across_jobs",
    "epsilon_for_plan",
    "epsilon_from_rdp",
    "gaussian_delta",
    "gaussian_sigma",
    "laplace_scale",
    "local_dp",
    "noise_for_epsilon",
    "randomized_response",
    "randomized_response_keep_probability",
    "rdp_gaussian",
    "rdp_sampled_gaussian",
    "split_noise_multiplier",
]

# Accountants by name (one today; a PRV accountant would register here).
ACCOUNTANTS: dict[str, type[RdpAccountant]] = {"rdp": RdpAccountant}
