"""What every command shares: the settings flags, argument types, and the check for an optional extra."""

import argparse
from pathlib import Path
from typing import Any

from ..config import Settings


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags for the settings; each defaults to the environment (LOGITSEARCH_*) and then to Settings."""
    group = parser.add_argument_group("settings (default: LOGITSEARCH_* environment variables)")
    for name, field in Settings.model_fields.items():
        kwargs: dict[str, Any] = {"dest": name, "help": field.description}
        if field.annotation in (bool, bool | None):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif field.annotation in (int, Path):
            kwargs["type"] = field.annotation
        group.add_argument(f"--{name.replace('_', '-')}", **kwargs)


def settings_from_args(args: argparse.Namespace) -> Settings:
    given = {name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None}
    return Settings(**given)


def model_name(text: str) -> str:
    from models.spec import check_model_name

    try:
        return check_model_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


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
