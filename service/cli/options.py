"""What every command shares: the settings flags, argument types, and the check for an optional extra."""

import argparse
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from ..config import Settings

#: The settings each kind of command reads (`serve` takes them all).
STORE_SETTINGS = (
    "data_dir", "pg_url", "pg_read_urls", "pg_statement_timeout_s", "pg_connect_timeout_s", "pg_pool_size",
    "pg_citus", "plugins", "log_level",
)  # fmt: skip
INDEX_SETTINGS = (*STORE_SETTINGS, "model", "index", "device", "faiss_gpu", "num_threads")
IMAGE_SETTINGS = ("max_image_bytes", "max_image_pixels")
TRAIN_SETTINGS = ("data_dir", "device", *IMAGE_SETTINGS, "log_level")
MODELS_SETTINGS = ("data_dir", "log_level")


class HelpFormatter(argparse.HelpFormatter):
    """Appends `(default: X)` to an option's help unless it has no default or already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
            and "default" not in text.lower()
        ):
            text = f"{text} (default: %(default)s)".strip()
        return text


class Parser(argparse.ArgumentParser):
    """An argument parser whose help shows defaults and whose usage errors are one line (exit code 2); its
    sub-command parsers are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_settings_flags(parser: argparse.ArgumentParser, names: Collection[str] | None = None) -> None:
    """Flags for the settings (only `names`, when given); each defaults to the environment (LOGITSEARCH_*) and
    then to Settings, as its help says."""
    group = parser.add_argument_group("settings (default: the LOGITSEARCH_* environment variable, else as shown)")
    for name, field in Settings.model_fields.items():
        if names is not None and name not in names:
            continue
        kwargs: dict[str, Any] = {"dest": name, "help": _setting_help(name, field)}
        if field.annotation in (bool, bool | None):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif field.annotation in (int, Path):
            kwargs["type"] = field.annotation
        elif typing.get_origin(field.annotation) is Literal:
            kwargs["choices"] = typing.get_args(field.annotation)
        group.add_argument(f"--{name.replace('_', '-')}", **kwargs)


def _setting_help(name: str, field: FieldInfo) -> str:
    if field.default_factory is not None:
        default = "the number of cores" if name == "num_threads" else "none"
    else:
        default = "unset" if field.default is None else str(field.default)
    text = f"{field.description} (default: {default}; LOGITSEARCH_{name.upper()})"
    return text.replace("%", "%%")


def settings_from_args(args: argparse.Namespace) -> Settings:
    given = {name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None}
    return Settings(**given)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per `exc`: `field: message` for each error, a setting named by its flag and variable."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"])
        if exc.title == Settings.__name__ and location in Settings.model_fields:
            location = f"--{location.replace('_', '-')} (LOGITSEARCH_{location.upper()})"
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return f"invalid {exc.title}: {'; '.join(parts)}"


def model_name(text: str) -> str:
    from models.spec import check_model_name

    try:
        return check_model_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"comma-separated numbers, e.g. 1.5,-2 ({exc})") from exc


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def strings(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def temperatures(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"comma-separated numbers, e.g. 1.0,0.5 ({exc})") from exc


def require_matplotlib(command: str) -> None:
    """Fail before any work when the plots of `command` cannot be drawn."""
    from ..errors import MissingExtraError

    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            f"`logitsearch {command}` draws its plots with matplotlib, which is not installed: "
            "pip install 'logit-search[eval]' (or pip install matplotlib)"
        ) from exc
