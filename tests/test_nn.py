"""The MADE's autoregressive property, its context and its single-feature pass."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from gendist.nn import MaskedMLP


@st.composite
def made_setups(draw):
    D = draw(st.integers(1, 6))
    order = torch.tensor(draw(st.permutations(list(range(D)))))
    hidden = tuple(draw(st.lists(st.integers(1, 12), min_size=0, max_size=3)))
    context = draw(st.sampled_from([0, 2]))
    params = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 1000))
    return D, order, hidden, context, params, seed


@given(made_setups())
def test_made_is_autoregressive_and_sees_the_context(setup):
    D, order, hidden, context, P, seed = setup
    torch.manual_seed(seed)
    made = MaskedMLP(D, P, hidden, context, order, activation=torch.nn.Tanh).double()  # tanh: no dead units
    for p in made.parameters():  # no accidental zeros: every allowed path carries signal
        torch.nn.init.normal_(p)
    x = torch.randn(D, dtype=torch.float64)
    c = torch.randn(context, dtype=torch.float64) if context else None
    J = torch.autograd.functional.jacobian(lambda v: made(v, c), x)  # (D, P, D)
    allowed = order[None, :] < order[:, None]  # output i may depend on input j iff rank j < rank i
    dependence = J.abs().sum(1) > 0
    assert not (dependence & ~allowed).any(), "an output depends on a feature of equal or higher rank"
    if hidden and context:
        # every feature, the first in the order included, depends on the context
        Jc = torch.autograd.functional.jacobian(lambda v: made(x, v), c)  # (D, P, C)
        assert (Jc.abs().sum((1, 2)) > 0).all()
    # the single-feature pass equals the full pass, feature by feature
    full = made(x, c)
    for i in range(D):
        torch.testing.assert_close(made.feature(x, c, i), full[i])
