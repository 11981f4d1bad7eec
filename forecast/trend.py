"""The trends the forecasting model may fit, named as the settings name them (kept apart from the model
so that reading the settings does not load statsmodels)."""

from __future__ import annotations

import enum


class Trend(enum.StrEnum):
    """A trend the ETS fit may take."""

    NONE = "none"
    ADDITIVE = "additive"
    DAMPED = "damped"
