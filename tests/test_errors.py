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
