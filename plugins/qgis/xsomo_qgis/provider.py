"""Processing provider ``xsomo``."""

from qgis.core import QgsProcessingProvider

from .algorithms import AnomalyMap, LoadDay, SampleAtStations


class XsomoProvider(QgsProcessingProvider):
    def id(self):
        return "xsomo"

    def name(self):
        return "xsomo (soil moisture)"

    def longName(self):  # noqa: N802
        return "xsomo: SoMo.ml-EU soil moisture"

    def loadAlgorithms(self):  # noqa: N802
        for alg in (LoadDay(), AnomalyMap(), SampleAtStations()):
            self.addAlgorithm(alg)
