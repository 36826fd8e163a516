"""``seganypet_serve``: our promptable models behind nnInteractive's remote protocol (docs/server.md)."""
