"""Run a button's action; on an error show it and carry on.

`slicer.util.tryWithErrorDisplay` shows its popup and then re-raises: code after the `with` block never
runs on an error, and the exception escapes the Qt slot. `guarded` shows the same message and returns.
No Slicer, no Qt: the display function is passed in.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable


def guarded(action: Callable[[], Any], message: str, showError: Callable[..., Any]) -> tuple[bool, Any]:
    """(True, action()) or, when it raised, (False, None) after `showError(text, detailedText=traceback)`."""
    try:
        return True, action()
    except Exception as e:  # a button slot must not raise: report and return
        logging.exception("ScarEnhance: %s", message)
        showError(f"{message}\n\n{e}", detailedText=traceback.format_exc())
        return False, None
