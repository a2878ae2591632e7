"""The plugin object: registers the Processing provider (also under qgis_process, without a GUI)."""

from qgis.core import QgsApplication

from xsomo_qgis.provider import XsomoProvider


class XsomoPlugin:
    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):
        if self.provider is None:
            self.provider = XsomoProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
