"""What ``resmo pretrain`` prints: resmo's own lines, third-party chatter hidden.

Without ``--verbose``: Lightning's information lines (the loop runs on Fabric, which prints
few: device and launch notes) are not shown, nor warnings raised from Lightning's modules
and deprecation warnings of any package; resmo's own warnings print as one line,
``# warning: ...``, without the source line Python adds. ``--verbose`` shows everything as
the libraries print it.
"""

from __future__ import annotations

import logging
import sys
import warnings

QUIET_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` that prints ``# warning: <message>`` on one line (the
    message's lines joined by spaces)."""
    print(f"# warning: {' '.join(str(message).split())}", file=file or sys.stderr, flush=True)


def quiet_third_party(*, verbose: bool) -> None:
    """Hide third-party banners, tips and deprecation warnings unless ``verbose``."""
    if verbose:
        return
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"(lightning|lightning_fabric|pytorch_lightning)(\.|$)")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.showwarning = one_line_warning
