"""The one exception type that reaches users as a single line.

Raise ``UserError`` for anything the user can fix (bad file, missing field,
missing database). The CLI prints ``error: <message>`` on one line and exits 2;
nothing else is printed, so the message must say what, where and how to fix.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line."""
