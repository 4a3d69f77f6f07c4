r"""Public checks for transforms, distributions, autoregressive and latent-variable models, MCMC samplers,
estimates of log Z; the conformance registry.

Users call these on their own compositions; gendist's own suite runs them
over every registered transform and model (:mod:`gendist.testing.registry`).
"""

from gendist.testing.autoregressive import (
    check_autoregressive,
    check_cached_sampling,
    check_enumeration,
    check_support,
)
from gendist.testing.distributions import (
    check_bad_inputs,
    check_extreme_inputs,
    check_float64,
    check_gradients,
    check_log_prob_kind,
    check_normalized,
    check_pyro,
    check_sample_log_prob,
    check_shapes,
    check_state_dict,
    check_unimplemented,
    chi2_pvalue,
)
from gendist.testing.energy import check_log_partition, exact_draws
from gendist.testing.inpainting import check_inpaint
from gendist.testing.latent import (
    LinearGaussian,
    LinearGaussianPosterior,
    check_bounds,
    check_estimate_against,
    linear_gaussian_model,
    ppca_marginal,
)
from gendist.testing.transforms import (
    check_finite_gradients,
    check_invertible,
    check_log_abs_det_jacobian,
    tolerance,
)

__all__ = [
    "LinearGaussian",
    "LinearGaussianPosterior",
    "exact_draws",
    "check_autoregressive",
    "check_bad_inputs",
    "check_bounds",
    "check_cached_sampling",
    "check_enumeration",
    "check_estimate_against",
    "check_extreme_inputs",
    "check_finite_gradients",
    "check_float64",
    "check_gradients",
    "check_inpaint",
    "check_invertible",
    "check_log_abs_det_jacobian",
    "check_log_partition",
    "check_log_prob_kind",
    "check_normalized",
    "check_pyro",
    "check_sample_log_prob",
    "check_shapes",
    "check_state_dict",
    "check_support",
    "check_unimplemented",
    "chi2_pvalue",
    "linear_gaussian_model",
    "ppca_marginal",
    "tolerance",
]
from gendist.testing.mcmc import check_mcmc, check_mcmc_discrete  # noqa: E402

__all__ += ["check_mcmc", "check_mcmc_discrete"]
from gendist.testing.implicit import check_implicit, check_reparameterized  # noqa: E402

__all__ += ["check_implicit", "check_reparameterized"]
