"""Step 5 of the method: skill against stations and other products, anomalies, the experiments.

Modules (their public names are re-exported here, so ``from xsomo import evaluation;
evaluation.pearson_r(...)`` works):

- :mod:`~xsomo.evaluation.scores`: numpy metric kernels (``np_metrics``) and their
  xarray wrappers (``pearson_r``, ``urmsd``, ..., ``metrics``);
- :mod:`~xsomo.evaluation.anomaly_kernels`: the one definition of the daily and the
  period anomaly in numpy alone (shared as one file with the QGIS plugin);
- :mod:`~xsomo.evaluation.climatology`: climatology, anomalies, period anomaly, summer means;
- :mod:`~xsomo.evaluation.skill`: evaluation at stations and against grids, summaries,
  metrics as GIS points;
- :mod:`~xsomo.evaluation.arrays`: the soil-moisture DataArray from what users pass;
- :mod:`~xsomo.evaluation.intercomparison`, :mod:`~xsomo.evaluation.experiments`.
"""

from __future__ import annotations

# module names never equal a re-exported function name (``evaluation.metrics`` is the
# function, ``evaluation.scores`` its module; ``evaluation.anomalies`` the function,
# ``evaluation.climatology`` its module)
from xsomo.evaluation.arrays import *  # noqa: F403
from xsomo.evaluation.arrays import __all__ as _arrays_all
from xsomo.evaluation.climatology import *  # noqa: F403
from xsomo.evaluation.climatology import __all__ as _climatology_all
from xsomo.evaluation.scores import *  # noqa: F403
from xsomo.evaluation.scores import __all__ as _scores_all
from xsomo.evaluation.skill import *  # noqa: F403
from xsomo.evaluation.skill import __all__ as _skill_all

__all__ = sorted({*_scores_all, *_climatology_all, *_skill_all, *_arrays_all})
