"""Import EA-LSTM checkpoints published by others into xsomo's :class:`~xsomo.model.ealstm.EALSTM`.

Two layouts are in use in the field:

``kratzert``
    Kratzert et al. (2019), github.com/kratzert/ealstm_regional_modeling, and the
    SoMo.ml v1 code built on it: ``weight_ih`` (D, 3H), ``weight_hh`` (H, 3H),
    ``weight_sh`` (S, H), ``bias`` (3H), ``bias_s`` (H), usually under an ``lstm.``
    prefix, and a dense head ``fc.weight`` (1, H), ``fc.bias`` (1). Gates
    ``f, o, g = chunk(bias + x_d @ weight_ih + h @ weight_hh, 3)``; input gate
    ``i = sigmoid(bias_s + x_s @ weight_sh)``.
``neuralhydrology``
    neuralhydrology's ``modelzoo/ealstm.py``: ``weight_ih`` (D, 3H), ``weight_hh``
    (H, 3H), ``bias`` (3H) with the same gate order f, o, g; the input gate from
    ``input_net`` = ``nn.Linear(S, H)`` (``input_net.weight`` (H, S), ``input_net.bias``);
    the head ``head.net.0.weight``/``head.net.0.bias``.

xsomo's :class:`EALSTM` keeps ``torch.nn.LSTM``'s layout (gate order i, f, g, o;
``weight_ih`` (4H, D+S) with the dynamic columns first) so that it runs on the fused
kernel; :func:`import_ealstm` maps either layout into it exactly (a permutation and
transposition of the same numbers, no arithmetic).

Checkpoints are loaded only with ``torch.load(..., weights_only=True,
map_location="cpu")`` (or :mod:`safetensors`), which refuses to run code stored in a
pickle; anything that is not a plain mapping of names to tensors raises
:class:`~xsomo.exceptions.CheckpointError`.

References
----------
Kratzert, F. et al. (2019): Towards learning universal, regional, and local hydrological
behaviors via machine learning applied to large-sample datasets. HESS 23, 5089-5110,
doi:10.5194/hess-23-5089-2019.

Kratzert, F. et al. (2022): NeuralHydrology - a Python library for deep learning research
in hydrology. JOSS 7(71), 4050, doi:10.21105/joss.04050.

O, S. and Orth, R. (2021): Global soil moisture data derived through machine learning
trained with in-situ measurements. Sci Data 8, 170, doi:10.1038/s41597-021-00964-1.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from xsomo.exceptions import CheckpointError
from xsomo.model.ealstm import EALSTM

if TYPE_CHECKING:  # pragma: no cover
    from xsomo.model.trained import TrainedModel

__all__ = [
    "Layout",
    "detect_layout",
    "export_ealstm",
    "import_ealstm",
    "import_trained_model",
    "load_somoml_v1",
    "load_state_dict",
]

Layout = Literal["kratzert", "neuralhydrology"]

_KRATZERT_KEYS = ("weight_ih", "weight_hh", "weight_sh", "bias", "bias_s")
_NH_KEYS = ("weight_ih", "weight_hh", "bias", "input_net.weight", "input_net.bias")
_HEAD_KEYS = {
    "kratzert": ("fc.weight", "fc.bias"),
    "neuralhydrology": ("head.net.0.weight", "head.net.0.bias"),
}
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


# ----------------------------------------------------------------------------- loading
def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a checkpoint file safely as a ``{name: tensor}`` state dict on the CPU.

    Parameters
    ----------
    path
        A ``torch.save`` file (zip or legacy format, also one saved on a GPU) or a
        ``.safetensors`` file. A dict wrapping the state dict under ``state_dict``,
        ``model_state_dict`` or ``model`` is unwrapped.

    Returns
    -------
    dict
        Parameter names to CPU tensors.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is corrupt, holds anything but tensors (e.g. a pickled object, which
        ``weights_only=True`` refuses to construct), or holds no tensors at all.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        except Exception as err:  # safetensors raises its own SafetensorError / OSError
            raise CheckpointError(f"cannot read the safetensors checkpoint {path}: {err}") from err
    else:
        try:
            obj = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as err:  # UnpicklingError (unsafe globals), RuntimeError (corrupt)
            raise CheckpointError(
                f"refusing or unable to load {path} as a weights-only checkpoint: {err}. "
                "Only plain state dicts (names -> tensors) are accepted; re-save the model with "
                "torch.save(model.state_dict(), path) from code you trust."
            ) from err
    return _as_state_dict(obj, source=str(path))


def _as_state_dict(obj: Any, *, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if (
                key in obj
                and isinstance(obj[key], Mapping)
                and not isinstance(obj[key], torch.Tensor)
            ):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source} holds a {type(obj).__name__}, not a state dict (a mapping of parameter "
            "names to tensors)"
        )
    bad = [
        str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if bad:
        raise CheckpointError(
            f"{source}: entries {bad[:5]} are not named tensors; expected a state dict"
        )
    if not obj:
        raise CheckpointError(f"{source} holds an empty state dict")
    return {k: v.detach().to("cpu") for k, v in obj.items()}


def _resolve(
    state: Mapping[str, torch.Tensor] | str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(state, str | os.PathLike):
        return load_state_dict(state), str(state)
    return _as_state_dict(state, source="the given state dict"), "the given state dict"


def _strip(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``module.`` (DataParallel) and ``lstm.`` prefixes; keep ``fc.``/``head.`` as they are."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        name = k.removeprefix("module.")
        name = name.removeprefix("lstm.")
        out[name] = v
    return out


def detect_layout(state: Mapping[str, torch.Tensor]) -> Layout:
    """Which published EA-LSTM layout a state dict is in.

    Raises
    ------
    CheckpointError
        If it is neither (the message lists the keys found).
    """
    keys = set(_strip(state))
    if all(k in keys for k in _KRATZERT_KEYS):
        return "kratzert"
    if all(k in keys for k in _NH_KEYS):
        return "neuralhydrology"
    if "input_net.net.0.weight" in keys or any(k.startswith("input_net.net.") for k in keys):
        raise CheckpointError(
            "this neuralhydrology EA-LSTM has an embedding network (cfg.embedding_hiddens) as its "
            "input gate; only a single linear input_net can be mapped onto an EA-LSTM input gate"
        )
    raise CheckpointError(
        f"not a known EA-LSTM layout: found keys {sorted(keys)}; expected Kratzert et al. "
        f"{list(_KRATZERT_KEYS)} (+ fc.weight, fc.bias) or neuralhydrology {list(_NH_KEYS)} "
        "(+ head.net.0.weight, head.net.0.bias)"
    )


# ----------------------------------------------------------------------------- mapping
def import_ealstm(
    state: Mapping[str, torch.Tensor] | str | os.PathLike[str],
    *,
    layout: Layout | Literal["auto"] = "auto",
    dropout: float = 0.0,
) -> EALSTM:
    """Map a published EA-LSTM checkpoint onto xsomo's :class:`EALSTM` (eval mode, CPU).

    Parameters
    ----------
    state
        A state dict or the path of a checkpoint (see :func:`load_state_dict`).
    layout
        ``"kratzert"`` (Kratzert et al. 2019 / SoMo.ml v1), ``"neuralhydrology"``, or
        ``"auto"`` to detect it from the parameter names.
    dropout
        Dropout of the returned network (only used if it is trained further).

    Returns
    -------
    EALSTM
        With ``n_dynamic``, ``n_static`` and ``hidden`` read from the weights; its forward
        pass computes exactly the published model's equations.

    Raises
    ------
    CheckpointError
        If the file is unsafe or corrupt, the layout is unknown, a parameter is missing
        or shapes disagree.

    Notes
    -----
    With H hidden units and the published gate blocks ``W = [W_f | W_o | W_g]`` (columns),
    xsomo's LSTM-layout rows are ``[W_s^T ; W_f^T ; W_g^T ; W_o^T]`` (i, f, g, o), where the
    input-gate rows take the static columns and the others the dynamic columns; the
    input-gate rows of ``weight_hh`` are zero. The head (``fc``) is copied as is.
    """
    raw, source = _resolve(state)
    found = detect_layout(raw) if layout == "auto" else layout
    if found not in ("kratzert", "neuralhydrology"):
        raise CheckpointError(
            f"unknown layout {layout!r}; use 'kratzert', 'neuralhydrology' or 'auto'"
        )
    sd = _strip(raw)
    if found == "kratzert":
        need = (*_KRATZERT_KEYS, *_HEAD_KEYS["kratzert"])
    else:
        need = (*_NH_KEYS, *_HEAD_KEYS["neuralhydrology"])
    missing = [k for k in need if k not in sd]
    if missing:
        raise CheckpointError(f"{source} ({found} layout) lacks {missing}; found {sorted(sd)}")
    w_ih = sd["weight_ih"].float()
    w_hh = sd["weight_hh"].float()
    b = sd["bias"].float()
    if found == "kratzert":
        w_s = sd["weight_sh"].float().T  # (H, S)
        b_s = sd["bias_s"].float()
    else:
        w_s = sd["input_net.weight"].float()  # nn.Linear(S, H).weight is (H, S)
        b_s = sd["input_net.bias"].float()
    head_w = sd[_HEAD_KEYS[found][0]].float()
    head_b = sd[_HEAD_KEYS[found][1]].float()

    if w_ih.dim() != 2 or w_ih.shape[1] % 3:
        raise CheckpointError(
            f"{source}: weight_ih must be (n_dynamic, 3*hidden), got {tuple(w_ih.shape)}"
        )
    d, h = w_ih.shape[0], w_ih.shape[1] // 3
    if w_s.dim() != 2 or w_s.shape[0] != h:
        raise CheckpointError(
            f"{source}: static weights must map to {h} hidden units, got {tuple(w_s.shape)}"
        )
    s = w_s.shape[1]
    expected = {
        "weight_hh": (w_hh, (h, 3 * h)),
        "bias": (b, (3 * h,)),
        "input-gate bias": (b_s, (h,)),
        "head weight": (head_w, (head_w.shape[0], h)),
        "head bias": (head_b, (head_w.shape[0],)),
    }
    for name, (t, shape) in expected.items():
        if tuple(t.shape) != shape:
            raise CheckpointError(
                f"{source}: {name} has shape {tuple(t.shape)}, expected {shape} (hidden={h})"
            )

    f_, o_, g_ = slice(0, h), slice(h, 2 * h), slice(2 * h, 3 * h)
    net = EALSTM(d, s, h, dropout=dropout, n_outputs=int(head_w.shape[0]))
    with torch.no_grad():
        weight_ih = torch.zeros(4 * h, d + s)
        weight_ih[:h, d:] = w_s
        weight_ih[h : 2 * h, :d] = w_ih[:, f_].T
        weight_ih[2 * h : 3 * h, :d] = w_ih[:, g_].T
        weight_ih[3 * h :, :d] = w_ih[:, o_].T
        weight_hh = torch.zeros(4 * h, h)
        weight_hh[h : 2 * h] = w_hh[:, f_].T
        weight_hh[2 * h : 3 * h] = w_hh[:, g_].T
        weight_hh[3 * h :] = w_hh[:, o_].T
        bias = torch.cat([b_s, b[f_], b[g_], b[o_]])
        net.weight_ih.copy_(weight_ih)
        net.weight_hh.copy_(weight_hh)
        net.bias.copy_(bias)
        net.head.weight.copy_(head_w)
        net.head.bias.copy_(head_b)
    net.initial_forget_bias = float(b[f_].mean())
    return net.eval()


def export_ealstm(net: EALSTM, *, layout: Layout = "kratzert") -> dict[str, torch.Tensor]:
    """The inverse of :func:`import_ealstm`: xsomo's EALSTM as a published-layout state dict.

    ``layout="kratzert"`` gives ``lstm.*`` and ``fc.*`` keys (as SoMo.ml v1 saved them);
    ``"neuralhydrology"`` gives neuralhydrology's EALSTM keys.
    """
    h, d = net.hidden, net.n_dynamic
    w_ih, w_hh = (w.detach().clone() for w in net.effective_weights())
    b = net.bias.detach().clone()
    i_, f_, g_, o_ = (slice(k * h, (k + 1) * h) for k in range(4))
    gates_ih = torch.cat([w_ih[f_, :d], w_ih[o_, :d], w_ih[g_, :d]]).T.contiguous()  # (D, 3H)
    gates_hh = torch.cat([w_hh[f_], w_hh[o_], w_hh[g_]]).T.contiguous()  # (H, 3H)
    bias = torch.cat([b[f_], b[o_], b[g_]])
    w_s = w_ih[i_, d:]  # (H, S)
    head_w, head_b = net.head.weight.detach().clone(), net.head.bias.detach().clone()
    if layout == "kratzert":
        return {
            "lstm.weight_ih": gates_ih,
            "lstm.weight_hh": gates_hh,
            "lstm.weight_sh": w_s.T.contiguous(),
            "lstm.bias": bias,
            "lstm.bias_s": b[i_].clone(),
            "fc.weight": head_w,
            "fc.bias": head_b,
        }
    if layout == "neuralhydrology":
        return {
            "weight_ih": gates_ih,
            "weight_hh": gates_hh,
            "bias": bias,
            "input_net.weight": w_s.contiguous(),
            "input_net.bias": b[i_].clone(),
            "head.net.0.weight": head_w,
            "head.net.0.bias": head_b,
        }
    raise CheckpointError(f"unknown layout {layout!r}; use 'kratzert' or 'neuralhydrology'")


# ----------------------------------------------------------------------------- SoMo.ml v1
def load_somoml_v1(
    folder: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    lookback: int = 365,
    negative_to_zero: bool = True,
) -> TrainedModel:
    """The published SoMo.ml v1 layer-1 model as a :class:`~xsomo.model.TrainedModel`.

    Parameters
    ----------
    folder
        The SoMo.ml v1 model-run folder (``somo_lstm`` or a folder above it), see
        :func:`xsomo.io.somoml.open_somoml_v1_run`.
    checkpoint
        The weights; default ``<somo_lstm>/model/model_epoch15.pt``.
    lookback
        Window length in days the model was trained for (365).
    negative_to_zero
        Set negative predictions to 0, as the published run did.

    Notes
    -----
    The model is sequence-to-one and does **not** forget its initial state within its
    365-day window; predict with ``mode="windowed"`` (or ``"auto"``, which detects this).
    A continuous roll-out differs from the published output by up to 0.16 m3 m-3.

    Returns
    -------
    TrainedModel
        One layer (1, 0-10 cm), one member; dynamic inputs ``log_tp, t2m, snr, ssrd, q, skt``
        and the ten statics in ``global_attri.dat`` order, raw (unscaled) as in the run folder;
        normalisation from ``scaler_ALL_layer0.dat`` / ``scaler_ALL_statics.dat``; output
        ``y * stdK(sm) + aveK(sm)``.
    """
    from xsomo.io import somoml

    base = somoml.find_somoml_v1_folder(folder)
    path = (
        pathlib.Path(checkpoint) if checkpoint is not None else base / "model" / "model_epoch15.pt"
    )
    net = import_ealstm(path, layout="kratzert")
    dyn_scaler = somoml.read_scaler(base / "ismn" / "lis" / "scaler_ALL_layer0.dat")
    sta_scaler = somoml.read_scaler(base / "ismn" / "attri" / "scaler_ALL_statics.dat")
    dynamic, static = somoml.SOMOML_V1_DYNAMIC, somoml.SOMOML_V1_STATIC
    if net.n_dynamic != len(dynamic) or net.n_static != len(static):
        raise CheckpointError(
            f"{path} has {net.n_dynamic} dynamic / {net.n_static} static inputs; SoMo.ml v1 uses "
            f"{len(dynamic)} ({', '.join(dynamic)}) / {len(static)}"
        )
    return import_trained_model(
        net,
        dynamic=dynamic,
        static=static,
        dynamic_mean=dyn_scaler.loc["aveK", list(dynamic)].to_numpy(),
        dynamic_std=dyn_scaler.loc["stdK", list(dynamic)].to_numpy(),
        static_mean=sta_scaler.loc["aveK", list(static)].to_numpy(),
        static_std=sta_scaler.loc["stdK", list(static)].to_numpy(),
        target_mean=float(dyn_scaler.at["aveK", somoml.SOMOML_V1_TARGET]),
        target_std=float(dyn_scaler.at["stdK", somoml.SOMOML_V1_TARGET]),
        layer=1,
        layout="kratzert",
        lookback=lookback,
        clip_negative=negative_to_zero,
        name="SoMo.ml v1 layer 1 (O & Orth 2021)",
        metadata={
            "source": str(path),
            "reference": "O, S. and Orth, R. (2021), Sci Data 8, 170, doi:10.1038/s41597-021-00964-1",
            "code": "github.com/osungmin/paper_SciData2021_SoMo_v1 @ 3b1b017",
            "licence": "no licence granted by the authors; reference and test use only",
        },
    )


def import_trained_model(
    state: Mapping[str, torch.Tensor] | str | os.PathLike[str] | EALSTM,
    *,
    dynamic: Sequence[str],
    static: Sequence[str],
    dynamic_mean: Sequence[float] | np.ndarray,
    dynamic_std: Sequence[float] | np.ndarray,
    static_mean: Sequence[float] | np.ndarray,
    static_std: Sequence[float] | np.ndarray,
    target_mean: float,
    target_std: float,
    layer: int = 1,
    layout: Layout | Literal["auto"] = "auto",
    lookback: int = 365,
    transforms: Mapping[str, str] | None = None,
    clip_negative: bool = False,
    name: str = "imported EA-LSTM",
    metadata: Mapping[str, Any] | None = None,
) -> TrainedModel:
    """Wrap a published single-layer EA-LSTM and its scalers as a :class:`~xsomo.model.TrainedModel`.

    Parameters
    ----------
    state
        A checkpoint path, a state dict in a published layout, or an :class:`EALSTM`.
    dynamic, static
        Input names in the network's column order (the names the drivers will carry).
    dynamic_mean, dynamic_std, static_mean, static_std
        z-score constants of the inputs (after ``transforms``), in the same order.
    target_mean, target_std
        Output rescaling: ``sm = y * target_std + target_mean``.
    layer
        The soil layer the network predicts (1, 2 or 3).
    layout
        See :func:`import_ealstm`.
    lookback
        The window length (days) the network was trained with.
    transforms
        ``{input name: "log1p"}`` applied to raw inputs before the z-score.
    clip_negative
        Set negative outputs to 0.
    name, metadata
        Provenance.

    Returns
    -------
    TrainedModel
        ``layers=(layer,)``, one member, no cascade.

    Raises
    ------
    CheckpointError
        If the weights are unsafe, unknown or do not fit ``dynamic``/``static``.
    """
    from xsomo.model.config import ModelConfig, NormStats
    from xsomo.model.trained import TrainedModel

    net = state if isinstance(state, EALSTM) else import_ealstm(state, layout=layout)
    if net.n_dynamic != len(dynamic) or net.n_static != len(static):
        raise CheckpointError(
            f"the network has {net.n_dynamic} dynamic / {net.n_static} static inputs, but "
            f"{len(dynamic)} dynamic ({list(dynamic)}) / {len(static)} static names were given"
        )
    if net.head.out_features != 1:
        raise CheckpointError(
            f"the network has {net.head.out_features} outputs; xsomo layers need exactly one"
        )
    config = ModelConfig(
        dynamic=tuple(dynamic),
        static=tuple(static),
        layers=(int(layer),),
        ensemble=1,
        lookback=int(lookback),
        seq_length=int(lookback),
        hidden=net.hidden,
        dropout=0.0,
        initial_forget_bias=net.initial_forget_bias,
        transforms=dict(transforms or {}),
        clip_negative=bool(clip_negative),
        cascade=False,
        name=name,
    )
    stats = NormStats(
        dynamic_mean=np.asarray(dynamic_mean, dtype="float64"),
        dynamic_std=np.asarray(dynamic_std, dtype="float64"),
        static_mean=np.asarray(static_mean, dtype="float64"),
        static_std=np.asarray(static_std, dtype="float64"),
        target_mean=np.asarray([target_mean], dtype="float64"),
        target_std=np.asarray([target_std], dtype="float64"),
    )
    weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
    meta = {"imported": True, "inference": "windowed", **dict(metadata or {})}
    return TrainedModel.from_weights(config, stats, {(int(layer), 0): weights}, metadata=meta)
