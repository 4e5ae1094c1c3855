"""Logging of the command line: one format, and third-party chatter kept below the default level."""

import logging

#: Loggers whose INFO lines read like errors or drown the output: FAISS's loader reports every optional
#: library it could not load (`Could not load library with AVX512 support ... ModuleNotFoundError`), httpx
#: one line per request (printed before `logitsearch search`'s table), Dask's scheduler and nannies every connection
#: of a `--dask local:N` cluster. They speak again at `debug`.
QUIET_LOGGERS = ("faiss.loader", "httpx", "httpcore", "distributed")


def configure_logging(level: str) -> None:
    """Log to stderr at `level` ("debug", "info", ...); the `QUIET_LOGGERS` only from WARNING unless debugging."""
    logging.basicConfig(
        level=logging.getLevelName(level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_loggers()


def quiet_loggers() -> None:
    """Keep the `QUIET_LOGGERS` at WARNING unless the root logger is at DEBUG; again after a library set its own."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.WARNING if logging.getLogger().level > logging.DEBUG else logging.NOTSET
        )
