"""The two ways a run can end early, mapped to the exit codes of DESIGN.md."""


class InputError(Exception):
    """Bad input or usage (exit 2): one line naming the file and the field."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 line: int | None = None):
        self.file, self.field, self.line = file, field, line
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if field:
            where += f"{field}: "
        super().__init__(where + message)


class FieldErrors(ValueError):
    """Every 'field: why' one parse found (a fault's params, an action's `with`); as a ValueError it
    reads as the first, so a caller that reports one still can."""

    def __init__(self, items: list[str]):
        super().__init__(items[0])
        self.items = items

    @classmethod
    def of(cls, e, prefix: str) -> "FieldErrors":
        """From a pydantic ValidationError, each field under `prefix` (e.g. 'params')."""
        return cls([f"{'.'.join(str(p) for p in (prefix, *err['loc']))}: {err['msg']}" for err in e.errors()])


class HarnessError(Exception):
    """The harness could not carry on (exit 3): a stack that would not start, a stop condition."""

    exit_code = 3
