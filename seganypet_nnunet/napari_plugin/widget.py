"""The dock widget: model, image, prompt and save controls over a ``ViewerSession`` (controller.py).

npe2 contributes ``SegAnyPETWidget`` (napari.yaml); napari passes the viewer as ``napari_viewer``. File dialogs only
fill the path fields; ``load_model()``, ``open_image()`` and ``save()`` read those fields, so a test or script can set
them and call the same methods.
"""

from __future__ import annotations

import torch
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.napari_plugin import pet_io
from seganypet_nnunet.napari_plugin.controller import ViewerSession
from seganypet_nnunet.pretrained import packaged_models

CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth")


def devices() -> list[str]:
    """Torch devices available here, CPU first."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def parse_folds(text: str) -> tuple[int | str, ...]:
    """``"0"``, ``"0,1,2"`` or ``"all"`` -> folds for ``SegAnyPETSession.from_model_folder``."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise SeganypetError("folds: name at least one fold, e.g. 0 or 0,1,2,3,4 or all")
    try:
        return tuple(p if p == "all" else int(p) for p in parts)
    except ValueError:
        raise SeganypetError(f"folds: {text!r} is not a comma-separated list of fold numbers") from None


def _button(text: str, slot, tip: str = "") -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(lambda *_: slot())
    b.setToolTip(tip)
    return b


class SegAnyPETWidget(QWidget):
    """SegAnyPET click segmentation dock widget."""

    def __init__(self, napari_viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.controller = c = ViewerSession(napari_viewer)
        c.on_status, c.on_busy, c.on_update = self._status, self._busy, self._refresh

        self.model_path, self.folds = QLineEdit(), QLineEdit("0")
        self.checkpoint, self.device = QComboBox(), QComboBox()
        self.checkpoint.setEditable(True)
        self.checkpoint.addItems(CHECKPOINTS)
        self.device.addItems(devices())
        self.trusted = QCheckBox("trust checkpoint (full unpickler)")
        model = QGroupBox("Model")
        form = QFormLayout(model)
        self.model_path.setPlaceholderText("model folder, or a packaged model's name")
        self.packaged = QComboBox()  # packaged models (seganypet_nnunet.pretrained): picking one fills the folder field
        self.packaged.addItems(["", *packaged_models()])
        self.packaged.textActivated.connect(lambda name: name and self.model_path.setText(name))
        form.addRow("packaged", self.packaged)
        form.addRow("folder", self._with_browse(self.model_path, self._browse_model))
        form.addRow("folds", self.folds)
        form.addRow("checkpoint", self.checkpoint)
        form.addRow("device", self.device)
        form.addRow(self.trusted)
        form.addRow(_button("Load model", self.load_model))

        self.image_path = QLineEdit()
        self.image_path.setPlaceholderText("NIfTI / MHA / NRRD file or DICOM folder")
        self.preset, self.inverted, self.mip = QComboBox(), QCheckBox("inverted grey"), QCheckBox("MIP view")
        self.preset.addItems(list(pet_io.WINDOW_PRESETS))
        self.preset.setCurrentText("SUV 0-10")
        self.inverted.setChecked(True)
        self.preset.currentTextChanged.connect(lambda *_: self._window())
        self.inverted.toggled.connect(lambda *_: self._window())
        self.mip.toggled.connect(lambda on: self.controller.layers and self.controller.set_mip(on))
        image = QGroupBox("Image")
        form = QFormLayout(image)
        row = QHBoxLayout()
        row.addWidget(self.image_path)
        row.addWidget(_button("File…", self._browse_image))
        row.addWidget(_button("DICOM…", self._browse_dicom, "a folder with one PET series; converted to SUVbw"))
        form.addRow(row)
        form.addRow(_button("Open image", self.open_image))
        views = QHBoxLayout()
        for w in (self.preset, self.inverted, self.mip):
            views.addWidget(w)
        form.addRow("window", views)

        self.target_name = QLineEdit()
        self.target_name.setPlaceholderText("target name (empty: target_N)")
        self.box_depth = QDoubleSpinBox()
        self.box_depth.setRange(0.0, 2000.0)
        self.box_depth.setSuffix(" mm")
        self.box_depth.setValue(ViewerSession.box_depth_mm)
        self.box_depth.valueChanged.connect(lambda v: setattr(self.controller, "box_depth_mm", float(v)))
        prompts = QGroupBox("Prompts: click on 'positive points' / 'negative points', draw on 'box', paint 'scribble'")
        grid = QGridLayout(prompts)
        grid.addWidget(self.target_name, 0, 0, 1, 2)
        self.next_target_button = _button("Next target", lambda: c.next_target(self.target_name.text().strip()))
        grid.addWidget(self.next_target_button, 0, 2)
        grid.addWidget(_button("Undo", c.undo), 1, 0)
        grid.addWidget(_button("Reset", c.reset), 1, 1)
        grid.addWidget(_button("Accept", c.accept, "keep this target; the next prompt starts a new one"), 1, 2)
        grid.addWidget(QLabel("box depth"), 2, 0)
        grid.addWidget(self.box_depth, 2, 1)
        grid.addWidget(_button("Apply scribble", c.apply_scribble, "label 1 = positive, 2 = negative"), 2, 2)
        self.automatic = _button("Automatic", c.run_automatic, "the model's prompt-free mode (all labels)")
        grid.addWidget(self.automatic, 3, 0)
        grid.addWidget(_button("Save labels…", self._browse_save), 3, 1, 1, 2)

        self.targets, self.latency, self.status = QLabel("targets: -"), QLabel("latency: -"), QLabel("")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        layout = QVBoxLayout(self)
        for w in (model, image, prompts, self.targets, self.latency, self.progress, self.status):
            layout.addWidget(w)
        layout.addStretch()
        self._refresh()

    # ------------------------------------------------------------------------------------------------- actions
    def load_model(self) -> None:
        """Load the model folder named in the folder field with the chosen folds, checkpoint and device."""
        try:
            folds = parse_folds(self.folds.text())
        except SeganypetError as err:
            self.controller.message(str(err), True)
            return
        self.controller.load_model(
            self.model_path.text().strip(),
            folds=folds,
            checkpoint=self.checkpoint.currentText(),
            device=self.device.currentText(),
            trusted=self.trusted.isChecked(),
        )

    def open_image(self) -> None:
        """Open the file or DICOM folder named in the image field."""
        self.controller.open_image(self.image_path.text().strip())

    def save(self, path: str) -> None:
        """Save the label map (and its names JSON) to ``path``."""
        self.controller.save(path)

    # ------------------------------------------------------------------------------------------------- helpers
    def _with_browse(self, edit: QLineEdit, browse) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit)
        row.addWidget(_button("…", browse))
        return box

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (Trainer__Plans__configuration)")
        if folder:
            self.model_path.setText(folder)

    def _browse_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "PET image", "", "Images (*.nii.gz *.nii *.mha *.mhd *.nrrd)")
        if path:
            self.image_path.setText(path)
            self.open_image()

    def _browse_dicom(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "PET DICOM series folder")
        if folder:
            self.image_path.setText(folder)
            self.open_image()

    def _browse_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save label map", "labels.nii.gz", "Images (*.nii.gz *.mha *.nrrd)")
        if path:
            self.save(path)

    def _window(self) -> None:
        if self.controller.layers:
            self.controller.set_window(self.preset.currentText(), self.inverted.isChecked())

    def _status(self, text: str, error: bool) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #e05050" if error else "")

    def _busy(self, busy: bool, description: str) -> None:
        self.progress.setRange(0, 0 if busy else 1)  # (0, 0): Qt's busy indicator
        self.progress.setFormat(description if busy else "")

    def _refresh(self) -> None:
        c = self.controller
        self.automatic.setEnabled(c.model_can_run_automatic)
        if c.session is not None and c.image is not None and c.layers:
            names = c.session.targets
            current = c.session.current_target
            text = ", ".join(f"{i}={n}{' *' if n == current else ''}" for i, n in enumerate(names, 1))
            self.targets.setText(f"targets: {text or '-'}")
        if c.latency_ms:
            self.latency.setText(f"latency (event -> labels on screen): last {c.latency_ms[-1]:.0f} ms")
