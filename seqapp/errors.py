"""The one kind of error a user sees: a single line and a non-zero exit (see cli.main)."""


class UserError(Exception):
    """A problem with what the user gave us (a path, a flag, a file). Printed as one line."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)


def positive(name: str, value, allow_zero: bool = False):
    """Refuse zero or negative sizes with a message that names the flag."""
    if value is None:
        return value
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value
