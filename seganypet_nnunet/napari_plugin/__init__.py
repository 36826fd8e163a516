"""napari plugin (optional extra ``pip install -e .[napari]``): click segmentation of whole-body PET.

Modules: ``pet_io`` (reading PET / DICOM as SUV, window presets, saving the label map), ``mapping`` (viewer data
coordinates <-> ITK voxel index), ``worker`` (serial napari thread workers), ``controller`` (the session bound to the
viewer's layers), ``widget`` (the dock widget napari.yaml contributes).
"""
