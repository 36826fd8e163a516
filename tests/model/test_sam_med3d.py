"""SamMed3DNet: the released checkpoints' exact state_dict, an independent implementation (medim 0.1.2, the official
SAM-Med3D loader) on the same random weights, and each upstream quirk checked by hand.

Two image-encoder passes in the whole module (ours and medim's, ~10-20 s each on 2 cores); the decoder tests use
random image embeddings.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seganypet_nnunet.model.sam_med3d import SamMed3DEmbedding, SamMed3DNet, zscore_crop
from seganypet_nnunet.model.sam_med3d.image_encoder import window_partition
from seganypet_nnunet.prompts.types import Prompts

GLOBAL_BLOCKS = (2, 5, 8, 11)


def reference_table() -> dict[str, tuple[int, ...]]:
    """The 324 keys and shapes of reference/seganypet_sam_med3d.md section 3.2, built from its rules."""
    t: dict[str, tuple[int, ...]] = {
        "image_encoder.pos_embed": (1, 8, 8, 8, 768),
        "image_encoder.patch_embed.proj.weight": (768, 1, 16, 16, 16),
        "image_encoder.patch_embed.proj.bias": (768,),
    }
    for i in range(12):
        b = f"image_encoder.blocks.{i}."
        rel = (15, 64) if i in GLOBAL_BLOCKS else (27, 64)
        t |= {b + f"{n}.{p}": (768,) for n in ("norm1", "norm2") for p in ("weight", "bias")}
        t |= {b + "attn.qkv.weight": (2304, 768), b + "attn.qkv.bias": (2304,)}
        t |= {b + "attn.proj.weight": (768, 768), b + "attn.proj.bias": (768,)}
        t |= {b + f"attn.rel_pos_{a}": rel for a in "dhw"}
        t |= {b + "mlp.lin1.weight": (3072, 768), b + "mlp.lin1.bias": (3072,)}
        t |= {b + "mlp.lin2.weight": (768, 3072), b + "mlp.lin2.bias": (768,)}
    t |= {"image_encoder.neck.0.weight": (384, 768, 1, 1, 1), "image_encoder.neck.2.weight": (384, 384, 3, 3, 3)}
    t |= {f"image_encoder.neck.{i}.{p}": (384,) for i in (1, 3) for p in ("weight", "bias")}
    p = "prompt_encoder."
    t |= {p + "pe_layer.positional_encoding_gaussian_matrix": (3, 128)}
    t |= {p + f"{n}.weight": (1, 384) for n in ("point_embeddings.0", "point_embeddings.1", "not_a_point_embed")}
    t |= {p + "no_mask_embed.weight": (1, 384)}
    t |= {p + "mask_downscaling.0.weight": (4, 1, 2, 2, 2), p + "mask_downscaling.0.bias": (4,)}
    t |= {p + "mask_downscaling.1.weight": (4,), p + "mask_downscaling.1.bias": (4,)}
    t |= {p + "mask_downscaling.3.weight": (16, 4, 2, 2, 2), p + "mask_downscaling.3.bias": (16,)}
    t |= {p + "mask_downscaling.4.weight": (16,), p + "mask_downscaling.4.bias": (16,)}
    t |= {p + "mask_downscaling.6.weight": (384, 16, 1, 1, 1), p + "mask_downscaling.6.bias": (384,)}
    m = "mask_decoder."
    t |= {m + "iou_token.weight": (1, 384), m + "mask_tokens.weight": (4, 384)}

    def attention(prefix: str, internal: int) -> None:
        for proj in "qkv":
            t[f"{prefix}.{proj}_proj.weight"], t[f"{prefix}.{proj}_proj.bias"] = (internal, 384), (internal,)
        t[f"{prefix}.out_proj.weight"], t[f"{prefix}.out_proj.bias"] = (384, internal), (384,)

    for layer in range(2):
        lp = f"{m}transformer.layers.{layer}."
        attention(lp + "self_attn", 384)
        attention(lp + "cross_attn_token_to_image", 192)
        attention(lp + "cross_attn_image_to_token", 192)
        t |= {lp + f"norm{k}.{q}": (384,) for k in range(1, 5) for q in ("weight", "bias")}
        t |= {lp + "mlp.lin1.weight": (2048, 384), lp + "mlp.lin1.bias": (2048,)}
        t |= {lp + "mlp.lin2.weight": (384, 2048), lp + "mlp.lin2.bias": (384,)}
    attention(m + "transformer.final_attn_token_to_image", 192)
    t |= {m + "transformer.norm_final_attn.weight": (384,), m + "transformer.norm_final_attn.bias": (384,)}
    t |= {m + "output_upscaling.0.weight": (384, 96, 2, 2, 2), m + "output_upscaling.0.bias": (96,)}
    t |= {m + "output_upscaling.1.weight": (96,), m + "output_upscaling.1.bias": (96,)}
    t |= {m + "output_upscaling.3.weight": (96, 48, 2, 2, 2), m + "output_upscaling.3.bias": (48,)}
    for k in range(4):
        h = f"{m}output_hypernetworks_mlps.{k}.layers."
        t |= {h + "0.weight": (384, 384), h + "0.bias": (384,), h + "1.weight": (384, 384), h + "1.bias": (384,)}
        t |= {h + "2.weight": (48, 384), h + "2.bias": (48,)}
    for k, (o, i) in enumerate([(256, 384), (256, 256), (4, 256)]):
        t |= {f"{m}iou_prediction_head.layers.{k}.weight": (o, i), f"{m}iou_prediction_head.layers.{k}.bias": (o,)}
    return t


@pytest.fixture(scope="module")
def net() -> SamMed3DNet:
    """Random weights where upstream initialises zeros/ones too (rel_pos, norms), so every term matters."""
    torch.manual_seed(0)
    model = SamMed3DNet().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if ("norm" in name or "neck.1" in name or "neck.3" in name) and name.endswith("weight") else 0.0
            p.copy_(base + 0.05 * torch.randn_like(p))
    return model


def fake_embedding(net: SamMed3DNet, seed: int = 1) -> SamMed3DEmbedding:
    g = torch.Generator().manual_seed(seed)
    return SamMed3DEmbedding(torch.randn(1, 384, 8, 8, 8, generator=g), net.prompt_encoder.get_dense_pe(), (128,) * 3)


def test_state_dict_is_the_released_layout():
    net = SamMed3DNet()
    sd = net.state_dict()
    want = reference_table()
    assert len(want) == 324
    assert {k: tuple(v.shape) for k, v in sd.items()} == want
    counts = [sum(k.startswith(p) for k in sd) for p in ("image_encoder.", "prompt_encoder.", "mask_decoder.")]
    assert counts == [189, 15, 120]
    assert sum(p.numel() for p in net.parameters()) == 100_509_232
    assert sum(v.numel() for v in sd.values()) == 100_509_232 + 3 * 128  # the persistent PE buffer


def test_same_outputs_as_the_official_medim_implementation(net):
    medim = pytest.importorskip("medim.models.sam_med3d")
    ref = medim.build_sam3D_vit_b_ori(pretrained=False).eval()
    ref.load_state_dict(net.state_dict(), strict=True)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 1, 128, 128, 128, generator=g) * 4 - 1  # (z, y, x) network-input order, some voxels <= 0
    with torch.no_grad():
        ours = net.encode(x)
        theirs = ref.image_encoder(net.to_weights_order(zscore_crop(x)))  # upstream input: (x, y, z), z-scored
        assert (ours.image_embeddings - theirs).abs().max() < 1e-4
        clicks_zyx = torch.tensor([[[40.0, 70.0, 20.0], [90.0, 12.0, 101.0], [64.0, 64.0, 64.0]]])
        labels = torch.tensor([[1, 0, 1]])
        prev_low = torch.randn(1, 1, 32, 32, 32, generator=g)
        for n in (1, 3):  # one click, several clicks
            sparse, dense = ref.prompt_encoder(
                points=(clicks_zyx[:, :n].flip(-1), labels[:, :n]), boxes=None, masks=prev_low
            )
            low_ref, iou_ref = ref.mask_decoder(
                image_embeddings=theirs,
                image_pe=ref.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            low, iou = net.decode_lowres(ours, clicks_zyx[:, :n].flip(-1), labels[:, :n], prev_low)
            assert low.shape == (1, 1, 32, 32, 32) and (low - low_ref).abs().max() < 1e-4
            assert (iou - iou_ref).abs().max() < 1e-4
            # the contract path: network-input (z, y, x) clicks, full-resolution logits back in (z, y, x)
            prompts = Prompts(points=clicks_zyx[:, :n], point_labels=labels[:, :n])
            full, _ = net.decode(ours, prompts)
            up = F.interpolate(low_ref, size=(128,) * 3, mode="trilinear", align_corners=False).permute(0, 1, 4, 3, 2)
            assert full.shape == (1, 1, 128, 128, 128) and (full - up).abs().max() < 1e-4


def test_windowed_blocks_pad_the_8_grid_into_one_14_window_unmasked():
    x = torch.randn(2, 8, 8, 8, 5)
    windows, padded = window_partition(x, 14)
    assert windows.shape == (2, 14, 14, 14, 5) and padded == (14, 14, 14)
    assert torch.equal(windows[:, :8, :8, :8], x) and windows[:, 8:].abs().sum() == 0
    blocks = SamMed3DNet().image_encoder.blocks
    assert [b.window for b in blocks] == [0 if i in GLOBAL_BLOCKS else 14 for i in range(12)]


def test_dense_pe_swaps_the_first_two_axes_of_point_coordinates(net):
    pe = net.prompt_encoder.get_dense_pe()[0]  # (384, 8, 8, 8)
    centre = torch.tensor([[[1 * 16 + 7.5, 5 * 16 + 7.5, 3 * 16 + 7.5]]])  # centre of token cell (1, 5, 3), in voxels
    point = net.prompt_encoder.pe_layer.points(centre + 0.5, (128, 128, 128))[0, 0]
    assert torch.allclose(point, pe[:, 5, 1, 3], atol=1e-5)
    assert not torch.allclose(point, pe[:, 1, 5, 3], atol=1e-2)


def test_encoding_is_sin_cos_sin_of_the_gaussian_projection(net):
    layer = net.prompt_encoder.pe_layer
    c = torch.tensor([[0.25, 0.5, 0.75]])
    enc = layer.encode(c)[0]
    proj = 2 * math.pi * ((2 * c - 1) @ layer.positional_encoding_gaussian_matrix)[0]
    assert enc.shape == (384,)
    assert torch.allclose(enc[:128], torch.sin(proj)) and torch.allclose(enc[128:256], torch.cos(proj))
    assert torch.equal(enc[256:], enc[:128])


def test_one_click_gets_a_padding_point(net):
    sparse = net.prompt_encoder.embed_points(torch.tensor([[[10.0, 20.0, 30.0]]]), torch.tensor([[1]]))
    assert sparse.shape == (1, 2, 384)
    assert torch.equal(sparse[0, 1], net.prompt_encoder.not_a_point_embed.weight[0])
    pe = net.prompt_encoder.pe_layer.points(torch.tensor([[[10.5, 20.5, 30.5]]]), (128,) * 3)[0, 0]
    assert torch.allclose(sparse[0, 0], pe + net.prompt_encoder.point_embeddings[1].weight[0])


def test_zscore_statistics_of_positive_voxels_applied_to_whole_crop():
    x = torch.tensor([0.0, -1.0, 1.0, 2.0, 3.0]).view(1, 1, 5, 1, 1).repeat(2, 1, 1, 1, 1)
    x[1] *= 10
    out = zscore_crop(x)
    assert torch.allclose(out[0, 0, :, 0, 0], torch.tensor([-2.0, -3.0, -1.0, 0.0, 1.0]))  # mean 2, std 1 over > 0
    assert torch.allclose(out[1], out[0])  # a global scale cancels out


def test_previous_mask_feedback_is_exact_and_absent_mask_is_zero(net):
    emb = fake_embedding(net)
    clicks = Prompts(points=torch.tensor([[[30.0, 60.0, 90.0]]]), point_labels=torch.tensor([[1]]))
    with torch.no_grad():
        first, _ = net.decode(emb, clicks)
        low_first, _ = net.decode_lowres(
            emb, clicks.points.flip(-1), clicks.point_labels, torch.zeros(1, 1, 32, 32, 32)
        )
        assert torch.allclose(first, net.upsample(low_first), atol=1e-6)
        again = Prompts(points=clicks.points, point_labels=clicks.point_labels, mask=first.clone())
        second, _ = net.decode(emb, again)
        expected, _ = net.decode_lowres(emb, clicks.points.flip(-1), clicks.point_labels, low_first)
        assert torch.allclose(second, net.upsample(expected), atol=1e-6)
        absent = Prompts(**{**again.__dict__, "mask_present": torch.tensor([False])})
        assert torch.allclose(net.decode(emb, absent)[0], first, atol=1e-6)


def test_prompt_only_and_input_errors(net):
    with pytest.raises(RuntimeError, match="prompt-only"):
        net(torch.zeros(1, 1, 128, 128, 128))
    with pytest.raises(ValueError, match=r"expects \(B, 1, 128, 128, 128\)"):
        net.encode(torch.zeros(1, 1, 64, 64, 64))
    boxes = Prompts(boxes=torch.tensor([[[1.0, 1.0, 1.0], [9.0, 9.0, 9.0]]]))
    with pytest.raises(ValueError, match="box prompts are not supported"):
        net.decode(fake_embedding(net), boxes)
    with pytest.raises(ValueError, match="one PET channel"):
        SamMed3DNet(input_channels=2)
