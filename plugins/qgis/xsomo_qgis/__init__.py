"""xsomo QGIS plugin: a Processing provider (id ``xsomo``) for SoMo.ml-EU outputs."""


def classFactory(iface):  # noqa: N802  (QGIS looks for this name)
    """Entry point QGIS calls with its interface object."""
    from .plugin import XsomoPlugin

    return XsomoPlugin(iface)
