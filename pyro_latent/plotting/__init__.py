"""Figures of the study, drawn with matplotlib (headless ``Agg`` backend)."""

import matplotlib

matplotlib.use("Agg")
