"""The ``.somo`` accessor on xarray Datasets.

Each method resolves its arguments and makes one call into the module that does the
work (STYLE.md §2). The accessor keeps no state: models and references are arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xarray as xr

if TYPE_CHECKING:
    import os

    from xsomo.model import TrainedModel


@xr.register_dataset_accessor("somo")
class SomoAccessor:
    """xsomo methods on a Dataset: ``ds.somo.scale_to(...)``, ``ds.somo.train_lstm(...)``, ..."""

    def __init__(self, xarray_obj: xr.Dataset) -> None:
        self._obj = xarray_obj

    # step 1: targets
    def scale_to(self, reference: xr.Dataset, **kwargs: Any) -> xr.Dataset:
        """Scale station series to the reference's mean and std per cell and layer.

        See :func:`xsomo.targets.scaling.scale_to`.
        """
        from xsomo.targets import scaling

        return scaling.scale_to(self._obj, reference, **kwargs)

    # step 3: model
    def train_lstm(self, targets: xr.Dataset, **kwargs: Any) -> TrainedModel:
        """Train the EA-LSTM cascade on these drivers. See :func:`xsomo.model.training.train_lstm`."""
        from xsomo.model import training

        return training.train_lstm(self._obj, targets, **kwargs)

    # step 4: prediction
    def predict(self, model: TrainedModel, *, dtype: str = "float32", **kwargs: Any) -> xr.Dataset:
        """Lazy soil-moisture prediction on these drivers. See :func:`xsomo.prediction.inference.predict`.

        ``dtype="float64"`` runs the roll-out in double precision (slower; exact where float32
        rounding matters).
        """
        from xsomo.prediction import inference

        return inference.predict(self._obj, model, dtype=dtype, **kwargs)  # type: ignore[arg-type]

    def to_files(self, directory: str | os.PathLike[str], **kwargs: Any) -> list[Any]:
        """Write ``SoMo.ml-EU_layer{N}_{YYYY}.nc`` files. See :func:`xsomo.prediction.output.to_files`."""
        from xsomo.prediction import output

        return output.to_files(self._obj, directory, **kwargs)

    def to_zarr(self, store: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Write one Zarr store ``sm(layer, time, lat, lon)``. See :func:`xsomo.prediction.output.to_zarr`."""
        from xsomo.prediction import output

        return output.to_zarr(self._obj, store, **kwargs)

    # step 5: evaluation
    def evaluate(self, reference: xr.Dataset, **kwargs: Any) -> xr.Dataset:
        """Skill against independent stations or a gridded product. See :func:`xsomo.evaluation.evaluate`."""
        from xsomo import evaluation

        return evaluation.evaluate(self._obj, reference, **kwargs)

    def anomalies(self, **kwargs: Any) -> xr.Dataset:
        """Normalised anomalies against the daily climatology. See :func:`xsomo.evaluation.anomalies`."""
        from xsomo import evaluation

        return evaluation.anomalies(self._obj, **kwargs)

    # GIS
    def to_cog(self, path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Write a Cloud-Optimized GeoTIFF. See :func:`xsomo.gis.export.to_cog`."""
        from xsomo.gis import export as gis

        return gis.to_cog(self._obj, path, **kwargs)
