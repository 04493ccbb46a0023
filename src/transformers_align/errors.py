"""The one kind of error a user's mistake raises.

Every check of what a user gave (a flag, a file, a setting, a folder) raises a ``UserError`` subclass whose
message is one line naming the flag or file, the value and what is allowed. ``cli.exit_on_user_error`` prints
that line and exits 2; any other exception is a bug in the library and keeps its traceback. It subclasses
``ValueError`` so that callers who caught the older ``ValueError`` subclasses still catch them.
"""


class UserError(ValueError):
    """A mistake in the user's arguments, files or folders; the message is one line for the user."""
