"""Background starts in a server process: let the screen being drawn finish before a heavy import."""

from __future__ import annotations

import threading

# How long a background start waits for the first screen's script run before it goes ahead.
SCREEN_WAIT_SECONDS = 30.0


def wait_for_screen(run: threading.Thread | None) -> None:
    """Let the script run that draws a screen finish before loading a heavy stack.

    Importing the model stack (the embedded runner) or the HTTP service holds the interpreter for
    seconds; started beside the sign-in page's run, they made that page take twice as long to
    show. Streamlit runs each script run in a thread of its own that ends with the run, so the
    caller passes that thread; None (or the calling thread itself) waits for nothing.
    """
    if run is not None and run is not threading.current_thread():
        run.join(SCREEN_WAIT_SECONDS)
