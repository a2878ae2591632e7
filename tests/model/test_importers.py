"""Import of published EA-LSTM checkpoints (Kratzert et al. 2019 and neuralhydrology layouts).

The reference for every mapped network is an independent numpy implementation of the
published equations, written from the papers' / repositories' formulation (gate order
f, o, g; input gate from the statics), not from xsomo's code.
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest
import torch

from xsomo.exceptions import CheckpointError
from xsomo.model.ealstm import EALSTM
from xsomo.model.importers import (
    detect_layout,
    export_ealstm,
    import_ealstm,
    import_trained_model,
    load_state_dict,
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def numpy_ealstm(
    x_d: np.ndarray,
    x_s: np.ndarray,
    *,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias: np.ndarray,
    w_static: np.ndarray,
    b_static: np.ndarray,
    fc_w: np.ndarray,
    fc_b: np.ndarray,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kratzert et al. (2019) EA-LSTM in float64 numpy: outputs (B, T, n_out), h_T, c_T.

    ``w_static`` is (S, H): i = sigmoid(b_static + x_s @ w_static).
    """
    b, t, _ = x_d.shape
    hdim = weight_hh.shape[0]
    h = np.zeros((b, hdim)) if h0 is None else h0.astype("float64")
    c = np.zeros((b, hdim)) if c0 is None else c0.astype("float64")
    i = _sigmoid(b_static + x_s @ w_static)
    ys = []
    for k in range(t):
        gates = bias + x_d[:, k] @ weight_ih + h @ weight_hh
        f, o, g = gates[:, :hdim], gates[:, hdim : 2 * hdim], gates[:, 2 * hdim :]
        c = _sigmoid(f) * c + i * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        ys.append(h @ fc_w.T + fc_b)
    return np.stack(ys, axis=1), h, c


def _random_kratzert(
    d: int, s: int, h: int, seed: int, *, prefix: bool = True
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    bias = r(3 * h)
    bias[:h] += 3.0  # a forget bias as in training
    lp, fp = ("lstm.", "fc.") if prefix else ("", "fc.")
    return {
        f"{lp}weight_ih": r(d, 3 * h),
        f"{lp}weight_hh": r(h, 3 * h, scale=0.2),
        f"{lp}weight_sh": r(s, h),
        f"{lp}bias": bias,
        f"{lp}bias_s": r(h),
        f"{fp}weight": r(1, h),
        f"{fp}bias": r(1),
    }


def _random_nh(d: int, s: int, h: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    return {
        "weight_ih": r(d, 3 * h),
        "weight_hh": r(h, 3 * h, scale=0.2),
        "bias": r(3 * h),
        "input_net.weight": r(h, s),
        "input_net.bias": r(h),
        "head.net.0.weight": r(1, h),
        "head.net.0.bias": r(1),
    }


def _np(sd: dict[str, torch.Tensor], key: str) -> np.ndarray:
    return sd[key].double().numpy()


def _inputs(b: int, t: int, d: int, s: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((b, t, d)), rng.standard_normal((b, s))


@pytest.mark.parametrize(
    ("d", "s", "h", "prefix"), [(6, 10, 16, True), (3, 2, 8, False), (1, 1, 5, True)]
)
def test_kratzert_import_matches_numpy_equations(d: int, s: int, h: int, prefix: bool) -> None:
    sd = _random_kratzert(d, s, h, seed=d * 100 + h, prefix=prefix)
    lp = "lstm." if prefix else ""
    net = import_ealstm(sd)
    assert (net.n_dynamic, net.n_static, net.hidden) == (d, s, h)
    assert not net.training
    x_d, x_s = _inputs(4, 40, d, s, seed=h)
    want, h_t, c_t = numpy_ealstm(
        x_d,
        x_s,
        weight_ih=_np(sd, f"{lp}weight_ih"),
        weight_hh=_np(sd, f"{lp}weight_hh"),
        bias=_np(sd, f"{lp}bias"),
        w_static=_np(sd, f"{lp}weight_sh"),
        b_static=_np(sd, f"{lp}bias_s"),
        fc_w=_np(sd, "fc.weight"),
        fc_b=_np(sd, "fc.bias"),
    )
    xd_t, xs_t = torch.from_numpy(x_d).float(), torch.from_numpy(x_s).float()
    with torch.no_grad():
        y_fused, (h_f, c_f) = net(xd_t, xs_t)
        y_loop, _ = net.forward_loop(xd_t, xs_t)
    np.testing.assert_allclose(y_fused.numpy(), want, atol=2e-5)
    np.testing.assert_allclose(y_loop.numpy(), want, atol=2e-5)
    np.testing.assert_allclose(h_f.numpy(), h_t, atol=2e-5)
    np.testing.assert_allclose(c_f.numpy(), c_t, atol=5e-5)


def test_kratzert_import_with_initial_state() -> None:
    d, s, h = 4, 3, 12
    sd = _random_kratzert(d, s, h, seed=3)
    net = import_ealstm(sd, layout="kratzert")
    x_d, x_s = _inputs(3, 25, d, s, seed=5)
    rng = np.random.default_rng(9)
    h0, c0 = rng.uniform(-0.5, 0.5, (3, h)), rng.uniform(-2, 2, (3, h))
    want, _, _ = numpy_ealstm(
        x_d,
        x_s,
        weight_ih=_np(sd, "lstm.weight_ih"),
        weight_hh=_np(sd, "lstm.weight_hh"),
        bias=_np(sd, "lstm.bias"),
        w_static=_np(sd, "lstm.weight_sh"),
        b_static=_np(sd, "lstm.bias_s"),
        fc_w=_np(sd, "fc.weight"),
        fc_b=_np(sd, "fc.bias"),
        h0=h0,
        c0=c0,
    )
    state = (torch.from_numpy(h0).float(), torch.from_numpy(c0).float())
    with torch.no_grad():
        y, _ = net(torch.from_numpy(x_d).float(), torch.from_numpy(x_s).float(), state)
    np.testing.assert_allclose(y.numpy(), want, atol=2e-5)


def test_neuralhydrology_import_matches_numpy_equations() -> None:
    d, s, h = 5, 7, 16
    sd = _random_nh(d, s, h, seed=11)
    assert detect_layout(sd) == "neuralhydrology"
    net = import_ealstm(sd)
    x_d, x_s = _inputs(3, 30, d, s, seed=2)
    want, _, _ = numpy_ealstm(
        x_d,
        x_s,
        weight_ih=_np(sd, "weight_ih"),
        weight_hh=_np(sd, "weight_hh"),
        bias=_np(sd, "bias"),
        w_static=_np(sd, "input_net.weight").T,  # nn.Linear: x_s @ W.T + b
        b_static=_np(sd, "input_net.bias"),
        fc_w=_np(sd, "head.net.0.weight"),
        fc_b=_np(sd, "head.net.0.bias"),
    )
    with torch.no_grad():
        y, _ = net(torch.from_numpy(x_d).float(), torch.from_numpy(x_s).float())
    np.testing.assert_allclose(y.numpy(), want, atol=2e-5)


@pytest.mark.parametrize("layout", ["kratzert", "neuralhydrology"])
def test_export_import_round_trip(layout: str) -> None:
    torch.manual_seed(0)
    net = EALSTM(4, 3, 8, dropout=0.0)
    with torch.no_grad():  # masked entries must not matter: fill them with junk
        net.weight_ih.add_((1 - net.mask_ih) * 7.0)
        net.weight_hh.add_((1 - net.mask_hh) * 7.0)
    sd = export_ealstm(net, layout=layout)  # type: ignore[arg-type]
    assert detect_layout(sd) == layout
    back = import_ealstm(sd)
    x_d, x_s = torch.randn(2, 15, 4), torch.randn(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(back(x_d, x_s)[0], net.eval()(x_d, x_s)[0], atol=1e-6, rtol=0)
    sd2 = export_ealstm(back, layout=layout)  # type: ignore[arg-type]
    assert sd2.keys() == sd.keys()
    for k in sd:
        torch.testing.assert_close(sd2[k], sd[k], atol=0, rtol=0)


@pytest.mark.parametrize("zipfile", [True, False])
def test_load_state_dict_from_file(tmp_path: pathlib.Path, zipfile: bool) -> None:
    sd = _random_kratzert(2, 2, 4, seed=1)
    path = tmp_path / "model_epoch15.pt"
    torch.save(sd, path, _use_new_zipfile_serialization=zipfile)
    loaded = load_state_dict(path)
    assert loaded.keys() == sd.keys()
    net = import_ealstm(path)
    assert net.hidden == 4
    # wrapped checkpoints ({"model_state_dict": ...}) are unwrapped
    torch.save({"epoch": torch.tensor(3), "model_state_dict": sd}, tmp_path / "wrapped.pt")
    assert import_ealstm(tmp_path / "wrapped.pt").hidden == 4


def test_load_safetensors(tmp_path: pathlib.Path) -> None:
    from safetensors.torch import save_file

    sd = _random_nh(3, 2, 4, seed=2)
    save_file(sd, str(tmp_path / "m.safetensors"))
    assert import_ealstm(tmp_path / "m.safetensors").n_static == 2


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_malicious_pickle_is_refused(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight_ih": torch.zeros(1), "x": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_state_dict(path)
    assert not marker.exists()
    # a raw pickle stream (not torch's format) likewise
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Evil(str(marker)), protocol=2))
    with pytest.raises(CheckpointError):
        import_ealstm(raw)
    assert not marker.exists()
    # the payload is live: an unrestricted unpickler would have run it
    pickle.loads(raw.read_bytes())
    assert marker.exists()


def test_bad_files_raise_checkpoint_error(tmp_path: pathlib.Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"junk\.pt"):
        load_state_dict(junk)
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_state_dict(tmp_path / "list.pt")
    torch.save({}, tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="empty"):
        load_state_dict(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError):
        load_state_dict(tmp_path / "absent.pt")


def test_unknown_or_inconsistent_layouts() -> None:
    with pytest.raises(CheckpointError, match="not a known EA-LSTM layout"):
        import_ealstm({"weight": torch.zeros(3, 3)})
    sd = _random_kratzert(3, 2, 8, seed=4)
    del sd["fc.bias"]
    with pytest.raises(CheckpointError, match=r"fc\.bias"):
        import_ealstm(sd)
    sd = _random_kratzert(3, 2, 8, seed=4)
    sd["lstm.weight_hh"] = torch.zeros(8, 20)
    with pytest.raises(CheckpointError, match="weight_hh"):
        import_ealstm(sd)
    nh = _random_nh(3, 2, 8, seed=4)
    emb = {k: v for k, v in nh.items() if not k.startswith("input_net")}
    emb["input_net.net.0.weight"] = torch.zeros(8, 2)
    with pytest.raises(CheckpointError, match="embedding"):
        import_ealstm(emb)
    with pytest.raises(CheckpointError, match="layout"):
        import_ealstm(_random_nh(3, 2, 8, seed=1), layout="kratzert")


def test_import_trained_model_rescales_and_round_trips(tmp_path: pathlib.Path) -> None:
    trained = pytest.importorskip("xsomo.model.trained")
    d, s, h = 3, 2, 8
    sd = _random_kratzert(d, s, h, seed=21)
    dyn_mean, dyn_std = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 3.0])
    st_mean, st_std = np.array([10.0, 0.0]), np.array([5.0, 2.0])
    model = import_trained_model(
        sd,
        dynamic=["a", "b", "c"],
        static=["s1", "s2"],
        dynamic_mean=dyn_mean,
        dynamic_std=dyn_std,
        static_mean=st_mean,
        static_std=st_std,
        target_mean=0.25,
        target_std=0.1,
        clip_negative=True,
    )
    assert isinstance(model, trained.TrainedModel)
    rng = np.random.default_rng(0)
    raw_d, raw_s = rng.normal(1.0, 2.0, (2, 20, d)), rng.normal(10.0, 5.0, (2, s))
    want, _, _ = numpy_ealstm(
        (raw_d - dyn_mean) / dyn_std,
        (raw_s - st_mean) / st_std,
        weight_ih=_np(sd, "lstm.weight_ih"),
        weight_hh=_np(sd, "lstm.weight_hh"),
        bias=_np(sd, "lstm.bias"),
        w_static=_np(sd, "lstm.weight_sh"),
        b_static=_np(sd, "lstm.bias_s"),
        fc_w=_np(sd, "fc.weight"),
        fc_b=_np(sd, "fc.bias"),
    )
    want_sm = np.maximum(want[..., 0] * 0.1 + 0.25, 0.0)
    (net,) = model.networks(1)
    with torch.no_grad():
        y, _ = net(
            torch.from_numpy(model.prepare_dynamic(raw_d)),
            torch.from_numpy(model.prepare_static(raw_s)),
        )
    np.testing.assert_allclose(model.denormalise(y[..., 0].numpy(), 1), want_sm, atol=1e-5)
    path = model.save(tmp_path / "imported")
    again = trained.TrainedModel.load(path)
    (net2,) = again.networks(1)
    with torch.no_grad():
        y2, _ = net2(
            torch.from_numpy(again.prepare_dynamic(raw_d)),
            torch.from_numpy(again.prepare_static(raw_s)),
        )
    torch.testing.assert_close(y2, y, atol=0, rtol=0)
    with pytest.raises(CheckpointError, match="dynamic"):
        import_trained_model(
            sd,
            dynamic=["a", "b"],
            static=["s1", "s2"],
            dynamic_mean=[0, 0],
            dynamic_std=[1, 1],
            static_mean=[0, 0],
            static_std=[1, 1],
            target_mean=0.0,
            target_std=1.0,
        )
