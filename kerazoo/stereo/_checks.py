"""Predicates shared by the stereo modules' argument checks: a bool is
never a number here, though Python counts it as an int."""

from __future__ import annotations

import math

import numpy as np


def is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_int(value, low=0):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low


def is_finite(value, low=0.0):
    return is_number(value) and math.isfinite(value) and value >= low
