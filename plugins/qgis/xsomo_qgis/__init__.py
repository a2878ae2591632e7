"""xsomo QGIS plugin: a Processing provider (id ``xsomo``) for SoMo.ml-EU outputs."""


def classFactory(iface):
    """Entry point QGIS calls with its interface object."""
    from xsomo_qgis.plugin import XsomoPlugin

    return XsomoPlugin(iface)
