"""Logging of the command line: one format, and third-party chatter kept below the default level."""

import logging

#: Loggers whose INFO lines read like errors or drown the output: FAISS's loader reports every optional
#: library it could not load (`Could not load library with AVX512 support ... ModuleNotFoundError`), httpx
#: one line per request (printed before `logitsearch search`'s table). They speak again at `debug`.
QUIET_LOGGERS = ("faiss.loader", "httpx", "httpcore")


def configure_logging(level: str) -> None:
    """Log to stderr at `level` ("debug", "info", ...); the `QUIET_LOGGERS` only from WARNING unless debugging."""
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if numeric > logging.DEBUG else logging.NOTSET)
