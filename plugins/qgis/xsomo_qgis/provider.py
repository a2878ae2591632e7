"""Processing provider ``xsomo``."""

from qgis.core import QgsProcessingProvider

from xsomo_qgis.algorithms import (
    AnomalyMap,
    LoadDay,
    SampleAtStations,
    Series,
    TimeLayer,
    ZonalStats,
)


class XsomoProvider(QgsProcessingProvider):
    def id(self):
        return "xsomo"

    def name(self):
        return "xsomo (soil moisture)"

    def longName(self):
        return "xsomo: SoMo.ml-EU soil moisture"

    def loadAlgorithms(self):
        for alg in (LoadDay(), AnomalyMap(), SampleAtStations(), Series(), ZonalStats(), TimeLayer()):
            self.addAlgorithm(alg)
