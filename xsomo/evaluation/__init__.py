"""Step 5 of the method: skill against stations and other products, and the experiments.

The public names of :mod:`~xsomo.evaluation.scores` are re-exported here, so
``from xsomo import evaluation; evaluation.pearson_r(...)`` keeps working.
"""

from __future__ import annotations

from xsomo.evaluation.scores import *  # noqa: F403
from xsomo.evaluation.scores import __all__ as _scores_all

__all__ = list(_scores_all)
