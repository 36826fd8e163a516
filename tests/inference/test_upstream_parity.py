"""The released-weights path against upstream's OWN pipeline, end to end, on the same file and the same world click.

Upstream side (nothing of ours but the weights): torchio reads the file, ``Resample(1.5)`` (linear),
``CropOrPad(128)`` centred on the click's voxel (zero padding), ``ZNormalization(masking_method=x > 0)``; medim's
``vit_b_ori`` (seeded random weights) runs encoder, prompt encoder (the click as voxel indices in the tensor's axis
order, i.e. 64, 64, 64) and decoder; the 32^3 logits are upsampled, thresholded and resampled (nearest) back to the
original grid. Axis convention: upstream training's (SimpleITK index order, no reorientation).

Our side: ``seganypet_import_checkpoint -o`` of the same weights -> ``SegAnyPETSession.from_model_folder`` ->
``set_image(file)`` -> ``add_point(world mm)``. Compared: the encoder input, the low-res logits, the mask in the
original grid. Images: 1.5 mm isotropic with a non-identity direction (a click near the border and one in the middle)
and an anisotropic one (3 x 2 x 1.5 mm, non-identity direction), whose extents are whole multiples of 1.5 mm so
torchio's and nnU-Net's 1.5 mm grids coincide (both centre the new grid on the old extent); there nnU-Net's linear
resampling (``SamMed3DPlanner``) gives torchio's values. Where an extent is not a multiple of 1.5 mm the grids differ
(torchio floors the size and keeps the centre, nnU-Net rounds the size and stretches the extent): not compared here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

tio = pytest.importorskip("torchio")
medim = pytest.importorskip("medim.models.sam_med3d")

# a rotation about z by 90 degrees combined with a flip of z: non-identity, orthonormal
DIRECTION = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def pet_phantom(size_ijk: tuple[int, int, int], spacing: tuple[float, float, float], seed: int) -> sitk.Image:
    """A PET-like image: warm body (> 0) in air (exact zeros, about a fifth of the image), a hot organ, noise;
    non-identity direction. The body's ellipse touches the image sides, so nnU-Net's crop to the non-zero bounding
    box keeps the whole image (a mask outside that box is background in nnU-Net's convention, not upstream's)."""
    rng = np.random.default_rng(seed)
    axes_mm = [np.arange(n) * s for n, s in zip(size_ijk[::-1], spacing[::-1], strict=True)]
    z, y, x = np.meshgrid(*axes_mm, indexing="ij")
    cz, cy, cx = (np.array(size_ijk[::-1]) - 1) * np.array(spacing[::-1]) / 2
    body = ((x - cx) / cx) ** 2 + ((y - cy) / cy) ** 2 <= 1.001
    organ = ((x - cx * 0.8) ** 2 + (y - cy * 1.1) ** 2 + (z - cz) ** 2) < (0.25 * min(cx, cy, cz) * 2) ** 2
    arr = np.where(body, 1.0 + 0.3 * rng.standard_normal(body.shape).clip(-3, 3), 0.0)
    arr = np.where(organ, 6.0 + rng.standard_normal(body.shape), arr).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((-40.0, 25.0, 310.0))
    img.SetDirection(DIRECTION)
    return img


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet

    torch.manual_seed(0)
    return SamMed3DNet().state_dict()


@pytest.fixture(scope="module")
def upstream(weights):
    ref = medim.build_sam3D_vit_b_ori(pretrained=False).eval()
    ref.load_state_dict(weights, strict=True)
    return ref


@pytest.fixture(scope="module")
def session(weights, tmp_path_factory):
    from seganypet_nnunet.inference.session import SegAnyPETSession
    from seganypet_nnunet.run.import_checkpoint import import_checkpoint

    root = tmp_path_factory.mktemp("zero_shot")
    torch.save({"model_state_dict": weights}, root / "released.pth")
    folder = import_checkpoint(root / "released.pth", output_folder=root / "model")
    s = SegAnyPETSession.from_model_folder(folder, follow=False)  # one crop: upstream runs exactly one
    s.click_policy = s.click_policy.off()
    captured: dict = {}
    net = s.networks[0]
    net.image_encoder.register_forward_pre_hook(lambda m, args: captured.__setitem__("input", args[0].clone()))
    net.mask_decoder.register_forward_hook(lambda m, args, out: captured.__setitem__("lowres", out[0].clone()))
    return s, captured


def upstream_pipeline(ref, path: Path, world_lps, canonical: bool = False) -> dict:
    """SAM-Med3D's inference utilities' steps with torchio + medim; returns encoder input, low-res logits and the
    (z, y, x) mask in the original grid."""
    image = tio.ScalarImage(path)
    subject = tio.Subject(image=image)
    subject = tio.Resample(1.5)(subject)  # linear for images
    if canonical:
        subject = tio.ToCanonical()(subject)
    ras = np.array([-world_lps[0], -world_lps[1], world_lps[2], 1.0])
    ijk = np.round(np.linalg.inv(subject.image.affine) @ ras)[:3].astype(int)  # the click's voxel, tensor order
    click = torch.zeros_like(subject.image.data, dtype=torch.uint8)
    click[(0, *ijk)] = 1
    subject.add_image(tio.LabelMap(tensor=click, affine=subject.image.affine), "click")
    subject = tio.CropOrPad(128, mask_name="click")(subject)
    subject = tio.ZNormalization(masking_method=lambda x: x > 0)(subject)
    x = subject.image.data[None].float()  # (1, 1, I, J, K)
    point = torch.argwhere(subject.click.data[0] > 0).float()[None]  # voxel indices in the tensor's axis order
    with torch.no_grad():
        emb = ref.image_encoder(x)
        sparse, dense = ref.prompt_encoder(
            points=(point, torch.ones(1, 1, dtype=torch.int64)), boxes=None, masks=torch.zeros(1, 1, 32, 32, 32)
        )
        low, _ = ref.mask_decoder(
            image_embeddings=emb,
            image_pe=ref.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
    full = F.interpolate(low, size=(128,) * 3, mode="trilinear", align_corners=False)
    crop_mask = tio.LabelMap(tensor=(torch.sigmoid(full[0]) > 0.5).to(torch.uint8), affine=subject.image.affine)
    back = tio.Resample(tio.ScalarImage(path), image_interpolation="nearest")(tio.Subject(mask=crop_mask))
    mask_zyx = back.mask.data[0].numpy().transpose(2, 1, 0)  # tensor (i, j, k) -> array (z, y, x)
    return {"input": x, "lowres": low, "mask": mask_zyx, "point": point[0, 0].tolist()}


def ours(session_and_capture, path: Path, world_lps) -> dict:
    s, captured = session_and_capture
    s.set_image(str(path))
    s.new_target("t")
    mask = s.add_point(world_lps, positive=True, space="world")
    return {"input": captured["input"], "lowres": captured["lowres"], "mask": mask}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def world_of(img: sitk.Image, ijk) -> tuple[float, float, float]:
    return img.TransformContinuousIndexToPhysicalPoint([float(v) for v in ijk])


FIGURES: dict[str, dict] = {}


@pytest.mark.parametrize("where", ["border", "middle"])
def test_isotropic_1p5mm_same_input_logits_and_mask(session, upstream, tmp_path, where):
    img = pet_phantom((110, 96, 120), (1.5, 1.5, 1.5), seed=1)
    path = tmp_path / "pet.nii.gz"
    sitk.WriteImage(img, str(path))
    ijk = (8, 70, 100) if where == "border" else (55, 48, 60)
    world = world_of(sitk.ReadImage(str(path)), ijk)
    up, our = upstream_pipeline(upstream, path, world), ours(session, path, world)
    assert up["point"] == [64.0, 64.0, 64.0]  # CropOrPad centred the crop on the click
    d_in = float((our["input"] - up["input"]).abs().max())
    d_low = float((our["lowres"] - up["lowres"]).abs().max())
    d_mask = dice(our["mask"], up["mask"])
    FIGURES[f"isotropic_{where}"] = {"input": d_in, "lowres": d_low, "dice": d_mask, "voxels": int(up["mask"].sum())}
    print(f"parity isotropic {where}: encoder input {d_in:.2e}, low-res logits {d_low:.2e}, mask Dice {d_mask:.4f}")
    assert d_in <= 1e-5 and d_low <= 1e-4
    assert up["mask"].sum() > 100 and d_mask >= 0.99


def test_anisotropic_direction_and_convention_dice(session, upstream, tmp_path):
    """3 x 2 x 1.5 mm, non-identity direction: nnU-Net's (linear) and torchio's resampling on coinciding grids; then
    the Dice between upstream's training convention (no reorientation) and its inference one (ToCanonical)."""
    img = pet_phantom((48, 72, 100), (3.0, 2.0, 1.5), seed=2)
    path = tmp_path / "pet_aniso.nii.gz"
    sitk.WriteImage(img, str(path))
    # a world click at a voxel centre of the 1.5 mm grid: an original voxel centre lies half-way between two 1.5 mm
    # voxels here, where numpy's round-half-even (the upstream side) and our round-half-up pick neighbours
    resampled = tio.Resample(1.5)(tio.Subject(image=tio.ScalarImage(path))).image
    ras = resampled.affine @ np.array([41.0, 53.0, 50.0, 1.0])
    world = (-ras[0], -ras[1], ras[2])
    up, our = upstream_pipeline(upstream, path, world), ours(session, path, world)
    d_in = float((our["input"] - up["input"]).abs().max())
    d_low = float((our["lowres"] - up["lowres"]).abs().max())
    d_mask = dice(our["mask"], up["mask"])
    canonical = upstream_pipeline(upstream, path, world, canonical=True)
    d_conv = dice(up["mask"], canonical["mask"])
    print(
        f"parity anisotropic: encoder input {d_in:.2e}, low-res logits {d_low:.2e}, mask Dice {d_mask:.4f}; "
        f"training vs inference convention Dice {d_conv:.4f}"
    )
    assert d_in <= 1e-5 and d_low <= 1e-4  # nnU-Net's linear resampling = torchio's on these coinciding grids
    assert up["mask"].sum() > 100 and d_mask >= 0.99
    assert d_conv < 0.99  # the conventions really differ on a non-identity direction
