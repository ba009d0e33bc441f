"""Errors a user can fix, under one base class.

The command line prints any `UserError` as one line naming the file, line,
field or option and what is wrong, and exits 1 (or its `exit_code`);
everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Base of every error the user can fix: bad input, a bad output path, a bad config, a missing extra."""

    exit_code = 1


class InputError(UserError, ValueError):
    """Bad input, located as precisely as the reader knows: `path:line: problem`."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class OutputError(UserError, ValueError):
    """An output that must not be written (it is an input, exists, or cannot be created)."""


class ConfigError(UserError, ValueError):
    """A config value, option or pipeline that cannot work, named with what would."""


class MissingPackage(UserError, ImportError):
    """A package that is not installed, named with the command that installs it."""


class MissingExtra(MissingPackage):
    """A feature whose packages are not installed: says which extra brings them."""

    def __init__(self, feature: str, packages, extra: str) -> None:
        self.extra = extra
        names = ", ".join(packages)
        super().__init__(f"{feature} needs the package(s) {names}: pip install 'spacy-wnut[{extra}]'")


def describe_config_error(err: Exception, section: str = "") -> str:
    """One line for a confection `ConfigValidationError`: each wrong key and what is wrong with it.

    err (ConfigValidationError): the error (its `errors` and `title`).
    section (str): the section that was validated, put before each key (e.g. `training`).
    RETURNS (str): e.g. `training.max_steps: Input should be a valid integer`.
    """
    prefix = [section] if section else []
    problems = [
        f"{'.'.join(map(str, [*prefix, *e.get('loc', ())])) or '?'}: {e.get('msg', 'invalid')}"
        for e in getattr(err, "errors", None) or []
    ]
    if problems:
        return "; ".join(problems)
    generic = ("Config validation error", "Make sure the sections and values are formatted correctly.")
    lines = [line.strip() for line in str(err).splitlines() if line.strip() and line.strip() not in generic]
    return " ".join(lines) or type(err).__name__


def require(feature: str, packages, extra: str) -> None:
    """Raise `MissingExtra` if any of `packages` (import names) is not installed.

    feature (str): what needs them, as the message names it.
    packages (Iterable[str]): import names.
    extra (str): the extra that installs them.
    """
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise MissingExtra(feature, missing, extra)


# What the `train` extra brings that run-time code may ask for.
TRAIN_PACKAGES = ("torch", "transformers", "safetensors")
