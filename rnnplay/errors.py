"""Errors the user can fix. The CLI prints their message as one line on stderr and exits with 2."""


class UserError(Exception):
    """Bad input: a missing or unreadable corpus, a corrupt checkpoint, an out-of-range value.

    The message is one line that says what is wrong and what to do about it.
    """
