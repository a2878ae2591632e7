"""Step 1 of the method: station targets.

Quality control of in-situ series (:mod:`~xsomo.targets.stations`) and their rescaling to
the reference's mean and variance, averaged per 0.1° cell (:mod:`~xsomo.targets.scaling`).
"""

from __future__ import annotations

from xsomo.targets.scaling import scale_to
from xsomo.targets.stations import open_ismn

__all__ = ["open_ismn", "scale_to"]
