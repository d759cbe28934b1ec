"""Atomic output: write to a temporary file next to the target, then rename.

A reader never sees a half-written result, an interrupted write leaves nothing
behind, and an existing result is only replaced when asked to.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tomotime.errors import OutputError, OutputExistsError, TomotimeError

__all__ = ["check_output", "atomic_path", "AtomicTarget", "unwritable"]


def check_output(path: str | Path, *, overwrite: bool = False) -> Path:
    """Return ``path`` as a ``Path`` after checking it may be written.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputExistsError(f"{p}: is a directory; expected a file path to write")
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{p}: exists already; pass overwrite=True (CLI: --overwrite) to replace it")
    return p


class AtomicTarget:
    """A temporary file beside ``path`` that becomes ``path`` on :meth:`commit`.

    The temporary name keeps the suffix of ``path`` (some writers add or
    check one), starts with a dot so that it is hidden, and is short, so any
    name the file system allows for ``path`` works.

    Parameters
    ----------
    path : str or Path
        Final output path. Its folder is created when missing.
    overwrite : bool
        Replace an existing ``path``; otherwise raise ``OutputExistsError``
        now and again at commit time.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = check_output(path, overwrite=overwrite)
        self.overwrite = overwrite
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unwritable(self.path, exc) from None
        token = secrets.token_hex(4)
        self.tmp = self.path.with_name(f".{token}.partial{self.path.suffix[:16]}")

    def commit(self) -> Path:
        """Rename the temporary file onto the target and return the target path."""
        if self.path.exists() and not self.overwrite:
            self.discard()
            raise OutputExistsError(f"{self.path}: appeared while it was being written; nothing was replaced")
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise unwritable(self.path, exc) from None
        return self.path

    def discard(self) -> None:
        """Delete the temporary file, if any."""
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; rename it onto ``path`` on success.

    On any exception (including ``KeyboardInterrupt``) the temporary file is
    deleted and ``path`` is left untouched; a failed write (``OSError``) is
    raised as an :class:`~tomotime.errors.OutputError` naming ``path``.

    Examples
    --------
    >>> with atomic_path("out.npy", overwrite=True) as tmp:  # doctest: +SKIP
    ...     np.save(tmp, array)
    """
    target = AtomicTarget(path, overwrite=overwrite)
    try:
        yield target.tmp
    except TomotimeError:
        target.discard()
        raise
    except OSError as exc:
        target.discard()
        raise unwritable(target.path, exc) from None
    except BaseException:
        target.discard()
        raise
    target.commit()


def unwritable(path: str | Path, exc: OSError) -> OutputError:
    """An :class:`OutputError` naming the user's ``path`` (not a temporary name) and the system's reason."""
    code = exc.errno or next((int(m) for m in re.findall(r"errno = (\d+)", str(exc))), None)  # h5py: in the text
    reason = os.strerror(code) if code else (exc.strerror or "the file system refused it")
    return OutputError(f"{path}: cannot be written ({reason})")
