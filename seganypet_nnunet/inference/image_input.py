"""Turn the image forms the session accepts into nnU-Net's (data, properties) and run its preprocessing once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager


def properties_from_geometry(geometry: sitk.Image) -> dict:
    """nnU-Net SimpleITKIO-style properties: ``sitk_stuff`` in ITK order, ``spacing`` in array order (z, y, x)."""
    spacing = tuple(float(s) for s in geometry.GetSpacing())
    return {
        "sitk_stuff": {
            "spacing": spacing,
            "origin": tuple(float(o) for o in geometry.GetOrigin()),
            "direction": tuple(float(d) for d in geometry.GetDirection()),
        },
        "spacing": list(spacing[::-1]),
    }


def read_image(image, properties: dict | None, plans_manager: PlansManager) -> tuple[np.ndarray, dict]:
    """(c, z, y, x) float32 data and properties from a path, a list of channel paths, a sitk.Image or (array, geometry).

    Raises:
        ValueError: unsupported input form or array dimensionality (message names the field).
    """
    if isinstance(image, (str, Path)):
        image = [image]
    if isinstance(image, list) and all(isinstance(f, (str, Path)) for f in image):
        missing = [str(f) for f in image if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"set_image: image file not found: {missing[0]}")
        return plans_manager.image_reader_writer_class().read_images([str(f) for f in image])
    if isinstance(image, sitk.Image):
        return sitk.GetArrayFromImage(image)[None].astype(np.float32), properties_from_geometry(image)
    if isinstance(image, tuple) and len(image) == 2 and isinstance(image[0], np.ndarray):
        array, geometry = image
        props = properties_from_geometry(geometry) if isinstance(geometry, sitk.Image) else dict(geometry)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            raise ValueError(f"set_image: array must be (z, y, x) or (c, z, y, x), got shape {array.shape}")
        return array.astype(np.float32), props
    if isinstance(image, np.ndarray) and properties is not None:
        return read_image((image, properties), None, plans_manager)
    raise ValueError("set_image: image must be a path, a list of channel paths, a sitk.Image or (array, geometry)")


def preprocess_image(
    image,
    properties: dict | None,
    plans_manager: PlansManager,
    configuration_manager: ConfigurationManager,
    dataset_json: dict,
) -> tuple[np.ndarray, dict]:
    """nnU-Net's preprocessing (DefaultPreprocessor.run_case_npy with the plans): (c, *preprocessed) data, properties.

    ``properties`` gains nnU-Net's ``bbox_used_for_cropping``, ``shape_before_cropping`` and
    ``shape_after_cropping_and_before_resampling`` (all in transposed array order).
    """
    data, props = read_image(image, properties, plans_manager)
    n_channels = len(dataset_json["channel_names"])
    if data.shape[0] != n_channels:
        raise ValueError(f"set_image: image has {data.shape[0]} channel(s), the model expects {n_channels}")
    preprocessor = configuration_manager.preprocessor_class(verbose=False)
    data, _, props = preprocessor.run_case_npy(data, None, props, plans_manager, configuration_manager, dataset_json)
    return data, props
