"""Step 2 of the method: the model's inputs on the 0.1° grid.

Dynamic forcings and static features assembled from the readers of :mod:`xsomo.io`
(:mod:`~xsomo.drivers.assemble`), the static features themselves
(:mod:`~xsomo.drivers.features`) and region masks (:mod:`~xsomo.drivers.regions`).
"""

from __future__ import annotations

from xsomo.drivers.assemble import open_drivers

__all__ = ["open_drivers"]
