"""Hypothesis strategies shared by the core property tests."""

from hypothesis import strategies as st

from ddgan_core.schedule import Schedule, make_schedule


@st.composite
def schedules(draw: st.DrawFn, max_timesteps: int = 10) -> Schedule:
    """Random valid schedules of both kinds."""
    timesteps = draw(st.integers(1, max_timesteps))
    if draw(st.booleans()):
        beta_min = draw(st.floats(0.01, 5.0))
        beta_max = beta_min + draw(st.floats(0.1, 30.0))
        return make_schedule(timesteps, beta_min, beta_max, "vp")
    beta_min = draw(st.floats(1e-4, 0.1))
    beta_max = draw(st.floats(beta_min * 1.5, 0.99))
    return make_schedule(timesteps, beta_min, beta_max, "geometric")
