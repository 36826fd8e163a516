"""Tests for the promptable SegAnyPETNet (tiny configs, real torch / nnU-Net / dna)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from seganypet_nnunet.model import (
    MODEL_CONFIGS,
    PromptableConfig,
    SegAnyPETNet,
    build_arch_kwargs,
    build_network_from_arch,
    build_tiny_network,
    get_model_config,
    plain_unet_arch,
)
from seganypet_nnunet.prompts.types import Prompts

PATCH = (32, 32, 32)
B = 2


@pytest.fixture(scope="module")
def net() -> SegAnyPETNet:
    torch.manual_seed(0)
    return build_tiny_network(input_channels=1, num_classes=3, patch_size=PATCH).eval()


def _x(batch: int = B, channels: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, *PATCH, generator=g) * 3  # negative values exercise the clamp


def _prompts(kind: str, batch: int = B, seed: int = 2) -> Prompts:
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(batch, 3, 3, generator=g) * (PATCH[0] - 1)
    labels = torch.tensor([[1, 0, -1], [1, 1, 0]])[:batch]
    lo = torch.rand(batch, 1, 3, generator=g) * 10
    boxes = torch.cat([lo, lo + 12], dim=1)
    mask = torch.randn(batch, 1, *PATCH, generator=g)
    some = torch.tensor([True, False])[:batch]
    return {
        "points": Prompts(points=pts, point_labels=labels),
        "padding_only": Prompts(points=pts, point_labels=torch.full((batch, 3), -1)),
        "no_points": Prompts(points=pts[:, :0], point_labels=labels[:, :0], boxes=boxes),
        "box": Prompts(boxes=boxes),
        "mask": Prompts(mask=mask),
        "mixed": Prompts(points=pts, point_labels=labels, boxes=boxes, box_mask=some, mask=mask, mask_present=some),
    }[kind]


def test_built_through_nnunet_plans_with_dotted_strings(net: SegAnyPETNet) -> None:
    arch = build_arch_kwargs(
        plain_unet_arch(features_per_stage=[8, 16], strides=[[1, 1, 1], [2, 2, 2]]), "tiny", ["log1p_suv"]
    )
    assert json.loads(json.dumps(arch)) == arch
    assert arch["network_class_name"] == "seganypet_nnunet.model.network.SegAnyPETNet"
    assert isinstance(arch["arch_kwargs"]["conv_op"], str)
    assert isinstance(net, SegAnyPETNet)
    assert net.config == get_model_config("tiny")


def test_residual_encoder_backbone() -> None:
    arch = plain_unet_arch(features_per_stage=[8, 16, 16], strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]])
    arch["network_class_name"] = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    kw = arch["arch_kwargs"]
    kw["n_blocks_per_stage"] = kw.pop("n_conv_per_stage")
    net = build_network_from_arch(build_arch_kwargs(arch, "tiny", ["log1p_suv"]), input_channels=1, num_classes=2)
    out = net(_x(1)[..., :16, :16, :16])
    assert [tuple(o.shape) for o in out] == [(1, 2, 16, 16, 16), (1, 2, 8, 8, 8)]


def test_forward_shapes_and_nnunet_deep_supervision_toggle(net: SegAnyPETNet) -> None:
    x = _x()
    with torch.no_grad():
        out = net(x)
        assert [tuple(o.shape) for o in out] == [(B, 3, 32, 32, 32), (B, 3, 16, 16, 16), (B, 3, 8, 8, 8)]
        trainer = nnUNetTrainer.__new__(nnUNetTrainer)
        trainer.network, trainer.is_ddp = net, False
        trainer.set_deep_supervision_enabled(False)  # nnU-Net's own toggle (sets net.decoder.deep_supervision)
        single = net(x)
        trainer.set_deep_supervision_enabled(True)
    assert isinstance(single, torch.Tensor) and single.shape == (B, 3, *PATCH)
    assert torch.equal(single, out[0])


@pytest.mark.parametrize("deep_supervision", [True, False])
def test_decoder_reimplementation_matches_stock(net: SegAnyPETNet, deep_supervision: bool) -> None:
    x = _x()
    net.decoder.deep_supervision = deep_supervision
    try:
        with torch.no_grad():
            ours = net(x)
            stock = net.image_encoder.backbone(torch.log1p(x.clamp_min(0)))
    finally:
        net.decoder.deep_supervision = True
    ours, stock = (ours, stock) if deep_supervision else ([ours], [stock])
    assert len(ours) == len(stock)
    for a, b in zip(ours, stock, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["points", "padding_only", "no_points", "box", "mask", "mixed"])
def test_prompt_combinations_shapes(net: SegAnyPETNet, kind: str) -> None:
    with torch.no_grad():
        masks, iou = net.forward_prompted(_x(), _prompts(kind))
    assert masks.shape == (B, 1, *PATCH) and iou.shape == (B, 1)
    assert torch.isfinite(masks).all() and torch.isfinite(iou).all()


def test_prompts_change_the_mask(net: SegAnyPETNet) -> None:
    with torch.no_grad():
        emb = net.encode(_x())
        a, _ = net.decode(emb, _prompts("points"))
        b, _ = net.decode(emb, _prompts("points", seed=7))
    assert not torch.allclose(a, b)


def test_encode_once_decode_many_matches_forward_prompted(net: SegAnyPETNet) -> None:
    x = _x()
    with torch.no_grad():
        emb = net.encode(x)
        assert emb.patch_shape == PATCH and emb.image_tokens.shape[2:] == net.prompt_grid_shape(PATCH)
        assert torch.equal(emb.auto_logits, net(x)[0])
        prev = None
        for step, kind in enumerate(["points", "mixed", "box", "points"]):
            p = _prompts(kind, seed=10 + step)
            if prev is not None:
                p = dataclasses.replace(p, mask=prev, mask_present=None)
            cached, iou_c = net.decode(emb, p)
            fresh, iou_f = net.forward_prompted(x, p)
            torch.testing.assert_close(cached, fresh)
            torch.testing.assert_close(iou_c, iou_f)
            prev = cached


def test_embedding_batch_one_broadcasts(net: SegAnyPETNet) -> None:
    x = _x(1)
    with torch.no_grad():
        emb = net.encode(x)
        many, _ = net.decode(emb, _prompts("mixed"))
        one, _ = net.decode(
            emb, Prompts(**{k: (v[1:] if v is not None else None) for k, v in _prompts("mixed").__dict__.items()})
        )
    torch.testing.assert_close(many[1:], one)


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    net = build_tiny_network(input_channels=2, num_classes=3, patch_size=PATCH).train()
    emb = net.encode(_x(channels=2))
    auto = sum(o.float().pow(2).mean() for o in emb.auto_output)
    masks, iou = net.decode(emb, _prompts("mixed"))
    target = (torch.rand_like(masks) > 0.5).float()
    loss = auto + F.binary_cross_entropy_with_logits(masks, target) + F.mse_loss(iou, torch.rand_like(iou))
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing


def test_state_dict_round_trip(net: SegAnyPETNet) -> None:
    torch.manual_seed(123)
    other = build_tiny_network(input_channels=1, num_classes=3, patch_size=PATCH).eval()
    x, p = _x(), _prompts("mixed")
    with torch.no_grad():
        assert not torch.allclose(other.forward_prompted(x, p)[0], net.forward_prompted(x, p)[0])
        other.load_state_dict(net.state_dict())
        torch.testing.assert_close(other.forward_prompted(x, p)[0], net.forward_prompted(x, p)[0])
        torch.testing.assert_close(other(x)[0], net(x)[0])
    assert "prompt_encoder.pe_layer.gaussian_matrix" in net.state_dict()


@pytest.mark.parametrize(
    "bad",
    [
        Prompts(points=torch.zeros(B, 3), point_labels=torch.zeros(B, 3, dtype=torch.long)),
        Prompts(points=torch.zeros(B, 2, 3), point_labels=torch.zeros(B, 3, dtype=torch.long)),
        Prompts(points=torch.zeros(B, 2, 3), point_labels=torch.full((B, 2), 2)),
        Prompts(points=torch.zeros(B, 2, 3)),
        Prompts(boxes=torch.zeros(B, 3)),
        Prompts(boxes=torch.zeros(B, 2, 3), box_mask=torch.ones(B)),
        Prompts(mask=torch.zeros(B, 1, 16, 16, 16)),
        Prompts(points=torch.zeros(B, 99, 3), point_labels=torch.ones(B, 99, dtype=torch.long)),
        Prompts(boxes=torch.zeros(3, 2, 3)),
    ],
)
def test_bad_prompts_raise(net: SegAnyPETNet, bad: Prompts) -> None:
    with torch.no_grad():
        emb = net.encode(_x())
        with pytest.raises(ValueError):
            net.decode(emb, bad)


def test_grid_config_and_sizes(net: SegAnyPETNet) -> None:
    assert net.prompt_grid_shape((32, 48, 64)) == (8, 12, 16)
    with pytest.raises(ValueError):
        net.prompt_grid_shape((30, 32, 32))
    with pytest.raises(ValueError):
        net(torch.zeros(1, 1, 20, 32, 32))
    with pytest.raises(KeyError, match="default"):
        get_model_config("nope")
    with pytest.raises(ValueError):
        PromptableConfig(embed_dim=33)
    with pytest.raises(ValueError):
        PromptableConfig.from_dict({**dataclasses.asdict(MODEL_CONFIGS["tiny"]), "bogus": 1})
    assert net.compute_conv_feature_map_size(PATCH) > net.image_encoder.compute_conv_feature_map_size(PATCH)
    with pytest.raises(ValueError, match="input_transforms"):
        build_network_from_arch(
            build_arch_kwargs(
                plain_unet_arch(features_per_stage=[8, 16], strides=[[1, 1, 1], [2, 2, 2]]),
                "tiny",
                ["log1p_suv", "identity"],
            ),
            input_channels=1,
            num_classes=2,
        )


def test_initialize_matches_nnunet_contract(net: SegAnyPETNet) -> None:
    conv = torch.nn.Conv3d(2, 2, 3)
    torch.nn.init.constant_(conv.bias, 1.0)
    SegAnyPETNet.initialize(conv)
    assert torch.equal(conv.bias, torch.zeros(2))


def test_sample_at_points_reads_voxel_centres() -> None:
    from seganypet_nnunet.model.click_encoder import sample_at_points

    feats = torch.arange(4 * 6 * 8, dtype=torch.float32).view(1, 1, 4, 6, 8)
    pts = torch.tensor([[[0.0, 0.0, 0.0], [3.0, 5.0, 7.0], [1.0, 2.0, 3.0]]])
    out = sample_at_points(feats, pts, (4, 6, 8))
    torch.testing.assert_close(
        out[0, :, 0], torch.stack([feats[0, 0, 0, 0, 0], feats[0, 0, 3, 5, 7], feats[0, 0, 1, 2, 3]])
    )
    # stride-2 grid: input voxels 2i, 2i+1 straddle the centre of cell i; (2i + 0.5) is exactly the cell centre.
    coarse = sample_at_points(feats[:, :, ::2, ::2, ::2].contiguous(), torch.tensor([[[2.5, 4.5, 0.5]]]), (4, 6, 8))
    torch.testing.assert_close(coarse[0, 0, 0], feats[0, 0, 2, 4, 0])


def test_click_maps_mark_clicks_and_previous_mask() -> None:
    from seganypet_nnunet.model.click_encoder import ClickEncoder

    enc = ClickEncoder(sigma=1.0)
    hr = torch.nn.functional.normalize(torch.randn(1, 4, 8, 8, 8), dim=1)  # as ImageEmbedding.highres_unit
    pts = torch.tensor([[[0.5, 0.5, 0.5], [12.5, 12.5, 12.5], [5.0, 5.0, 5.0]]])  # centres of cells 0 and 6
    labels = torch.tensor([[1, 0, -1]])
    mask = torch.full((1, 1, 16, 16, 16), -10.0)
    mask[..., :8, :, :] = 10.0
    maps = enc(
        points=pts,
        labels=labels,
        highres_unit=hr,
        patch_shape=(16, 16, 16),
        mask=mask,
        mask_present=torch.tensor([True]),
    )
    assert maps.shape == (1, 5, 8, 8, 8)
    assert maps[0, 0, 0, 0, 0] > 0.9 and maps[0, 0, 7, 7, 7] < 1e-3  # positive Gaussian at cell 0
    assert maps[0, 1, 6, 6, 6] > 0.9 and maps[0, 1, 0, 0, 0] < 1e-3  # negative Gaussian at cell 6
    torch.testing.assert_close(maps[0, 2, 0, 0, 0], torch.tensor(1.0))  # cosine similarity to itself
    assert maps[0, 4, :4].min() > 0.99 and maps[0, 4, 4:].max() < 1e-3  # previous mask probability
    none = enc(
        points=None,
        labels=None,
        highres_unit=hr,
        patch_shape=(16, 16, 16),
        mask=mask,
        mask_present=torch.tensor([False]),
    )
    assert float(none.abs().max()) == 0.0


def test_sgd_adamw_matches_torch_optimizers() -> None:
    from seganypet_nnunet.trainers.optim import SGDAdamW

    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    ref_a, ref_b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    ref_a.load_state_dict(a.state_dict())
    ref_b.load_state_dict(b.state_dict())
    ours = SGDAdamW(
        [
            {"params": a.parameters()},
            {"params": b.parameters(), "rule": "adamw", "lr_scale": 0.1, "weight_decay": 0.01},
        ],
        1e-2,
        weight_decay=3e-5,
    )
    sgd = torch.optim.SGD(ref_a.parameters(), 1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5)
    adamw = torch.optim.AdamW(ref_b.parameters(), 1e-3, weight_decay=0.01)
    for _ in range(3):
        x = torch.randn(5, 4)
        for opt, mods in ((ours, (a, b)), (sgd, (ref_a,)), (adamw, (ref_b,))):
            opt.zero_grad()
            sum(m(x).pow(2).sum() for m in mods).backward()
            opt.step()
    for m, r in ((a, ref_a), (b, ref_b)):
        torch.testing.assert_close(m.weight, r.weight)
    again = SGDAdamW([{"params": a.parameters()}, {"params": b.parameters(), "rule": "adamw"}], 1e-2)
    again.load_state_dict(ours.state_dict())  # nnU-Net's checkpoint round trip
    assert again.param_groups[1]["lr_scale"] == 0.1 and again.state[b.weight]["step"] == 3


def test_without_click_biases_every_parameter_still_gets_a_gradient() -> None:
    cfg = dataclasses.replace(MODEL_CONFIGS["tiny"], point_features=False, click_maps=False)
    net = build_tiny_network(num_classes=3, patch_size=PATCH, config=cfg).train()
    assert net.click_encoder is None and net.prompt_encoder.point_feature_proj is None
    emb = net.encode(_x())
    masks, iou = net.decode(emb, _prompts("mixed"))
    (sum(o.float().pow(2).mean() for o in emb.auto_output) + masks.mean() + iou.mean()).backward()
    assert not [n for n, p in net.named_parameters() if p.grad is None]
