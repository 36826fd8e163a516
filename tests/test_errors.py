"""``errors.cli_entry``'s SIGTERM handling: the command's process turns SIGTERM into SystemExit, processes forked
from it (nnU-Net's multiprocessing pools) get the default action back, so ``terminate()`` kills them."""

from __future__ import annotations

import multiprocessing
import signal
import time

from seganypet_nnunet.errors import EXIT_SIGTERM, cli_entry


def _sleep() -> None:
    time.sleep(60)


def test_a_worker_forked_inside_a_command_dies_of_sigterm_while_the_command_turns_it_into_systemexit():
    seen = {}

    @cli_entry("seganypet_test")
    def main(argv=None) -> None:
        seen["handler"] = signal.getsignal(signal.SIGTERM)
        worker = multiprocessing.get_context("fork").Process(target=_sleep)
        worker.start()
        time.sleep(0.5)
        worker.terminate()
        worker.join(timeout=20)
        seen["exitcode"] = worker.exitcode

    main([])
    assert callable(seen["handler"])  # the command's own process: SIGTERM raises SystemExit(EXIT_SIGTERM)
    assert seen["exitcode"] == -signal.SIGTERM != EXIT_SIGTERM  # the forked worker: killed by the signal itself
    assert signal.getsignal(signal.SIGTERM) is not seen["handler"]  # restored after the command


def test_errors_module_imports_nothing_of_ours_and_every_user_error_type_is_a_seganypet_error():
    import ast
    from pathlib import Path

    import seganypet_nnunet.errors as errors
    from seganypet_nnunet.checkpoint_io import CheckpointError
    from seganypet_nnunet.dataset_conversion.common import ConversionError
    from seganypet_nnunet.prompts.prompt_file import PromptFileError

    tree = ast.parse(Path(errors.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("seganypet")], imported
    for error_type in (CheckpointError, ConversionError, PromptFileError):
        assert issubclass(error_type, errors.SeganypetError)

    @cli_entry("seganypet_test")
    def main(argv=None) -> None:
        raise CheckpointError("model.pth: truncated")

    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 1


def test_sigterm_wrapped_by_the_code_it_interrupts_still_exits_143_in_one_line(capsys):
    """pydoc.locate (nnU-Net importing the network class) wraps the handler's SystemExit in ErrorDuringImport."""
    import os

    import pytest

    @cli_entry("seganypet_test")
    def main(argv=None) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except BaseException as err:
            raise RuntimeError(f"problem in some.module - {type(err).__name__}") from err

    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == EXIT_SIGTERM
    assert capsys.readouterr().err.strip() == "seganypet_test: terminated"

    @cli_entry("seganypet_test")
    def failing(argv=None) -> None:
        raise RuntimeError("a bug, not a signal")

    with pytest.raises(RuntimeError):  # without SIGTERM an unexpected error keeps its traceback
        failing([])
