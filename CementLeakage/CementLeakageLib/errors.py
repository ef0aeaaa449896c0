"""The one exception type the package raises for bad input."""


class CementLeakageError(ValueError):
    """Input that cannot be measured: the message names the problem and what to do.

    The command line prints the message on one line and exits non-zero; the API and the
    Slicer logic raise it unchanged.
    """
