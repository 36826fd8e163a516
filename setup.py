"""Installs seganypet_nnunet; the stage folders land under the ``seganypet_nnunet.`` namespace."""

from setuptools import find_packages, setup

# The three pipeline-stage folders live at the repository top level (nnU-Net style) but install as
# sub-packages of seganypet_nnunet, so nothing generic such as ``trainers`` lands top-level in site-packages.
STAGE_FOLDERS = {
    "seganypet_nnunet.dataset_conversion": "dataset_conversion",
    "seganypet_nnunet.planners": "planners",
    "seganypet_nnunet.trainers": "trainers",
}


def _packages() -> list[str]:
    packages = find_packages(include=["seganypet_nnunet", "seganypet_nnunet.*"])
    for namespace, folder in STAGE_FOLDERS.items():
        packages.append(namespace)
        packages += [f"{namespace}.{sub}" for sub in find_packages(where=folder)]
    return packages


CONSOLE_SCRIPTS = [
    "seganypet_make_synthetic = seganypet_nnunet.synthetic.cli:make_synthetic_entry",
    "seganypet_dicom_to_suv = seganypet_nnunet.dataset_conversion.dicom_to_suv:dicom_to_suv_entry",
    "seganypet_convert_autopet_fdg = seganypet_nnunet.dataset_conversion.Dataset221_AutoPET_FDG:convert_entry",
    "seganypet_convert_autopet_iv = seganypet_nnunet.dataset_conversion.Dataset224_AutoPET_IV:convert_entry",
    "seganypet_convert_autopet_organ = seganypet_nnunet.dataset_conversion.Dataset225_AutoPET_Organ:convert_entry",
    "seganypet_convert_hecktor = seganypet_nnunet.dataset_conversion.Dataset226_HECKTOR:convert_entry",
    "seganypet_convert_generic = seganypet_nnunet.dataset_conversion.generic_folder:convert_entry",
    "seganypet_plan_and_preprocess = seganypet_nnunet.run.plan_and_preprocess:plan_and_preprocess_entry",
    "seganypet_train = seganypet_nnunet.run.train:train_entry",
    "seganypet_import_checkpoint = seganypet_nnunet.run.import_checkpoint:import_checkpoint_entry",
    "seganypet_check_model = seganypet_nnunet.run.check_model:check_model_entry",
    "seganypet_predict = seganypet_nnunet.inference.predict:predict_entry",
    "seganypet_evaluate = seganypet_nnunet.evaluation.evaluate_cli:evaluate_entry",
    "seganypet_compare = seganypet_nnunet.evaluation.compare:compare_entry",
    "seganypet_demo = seganypet_nnunet.demo:demo_entry",
    "seganypet_score_autopet = seganypet_nnunet.evaluation.autopet_score:score_autopet_entry",
    "seganypet_predict_autopet_gc = seganypet_nnunet.evaluation.autopet_gc:predict_autopet_gc_entry",
    "seganypet_serve = seganypet_nnunet.server.cli:serve_entry",
]

setup(
    name="seganypet_nnunet",
    version="0.1.0",
    description="Promptable (SegAnyPET-style) whole-body PET segmentation built into nnU-Net v2",
    python_requires=">=3.10",
    packages=_packages(),
    package_dir=STAGE_FOLDERS,
    install_requires=[
        "nnunetv2>=2.8,<2.9",
        "torch>=2.1.2,!=2.9.*",
        "SimpleITK>=2.2",
        "batchgenerators>=0.25",
        "batchgeneratorsv2>=0.3",
        "acvl_utils>=0.2",
        "numpy",
        "scipy",
        "scikit-image",  # watershed (inference/reader_region.py); nnU-Net needs it too
        "pydicom>=2.4",
        "connected-components-3d>=3.12",
        "matplotlib",
        "tqdm",
        "blosc2",  # the NNIA arrays of seganypet_serve (nnU-Net depends on it too)
    ],
    extras_require={
        "test": ["pytest", "ruff", "medim==0.1.2", "requests", "torchio", "nninteractive-client==2.6.0"],
        "napari": ["napari[pyqt5]>=0.5,<0.7"],  # the viewer plugin, seganypet_nnunet/napari_plugin
    },
    package_data={
        "seganypet_nnunet.napari_plugin": ["napari.yaml"],
        "seganypet_nnunet.pretrained": ["*/*.json", "*/*.md", "*/fold_0/*.pth"],  # packaged models (weights only)
    },
    entry_points={
        "console_scripts": CONSOLE_SCRIPTS,
        "napari.manifest": ["seganypet_nnunet = seganypet_nnunet.napari_plugin:napari.yaml"],
    },
)
