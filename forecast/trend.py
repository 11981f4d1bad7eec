"""The trends the forecasting model may fit, named as the settings name them (kept apart from the model
so that reading the settings does not load the forecasting library)."""

from __future__ import annotations

import enum


class Trend(enum.StrEnum):
    """The ETS trend: one of them, or auto for the one of lowest AICc among the three."""

    AUTO = "auto"
    NONE = "none"
    ADDITIVE = "additive"
    DAMPED = "damped"
