"""Training arguments as Ultralytics' own command line reads and checks them (``ultralytics.cfg``)."""

from __future__ import annotations

import logging
import re
from typing import Any

from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg, check_dict_alignment, merge_equals_args, parse_key_value_pair
from ultralytics.utils import LOGGER

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Older Ultralytics versions append the command line they were given and their whole CLI help to the message
_HELP_STARTS = ("Arguments received:", "Ultralytics 'yolo' commands use")


def check_train_args(overrides: dict[str, Any]) -> None:
    """Ultralytics' key and value checks of ``overrides``; ``ValueError`` naming the bad argument.

    Unknown keys get Ultralytics' closest-key suggestions; wrong types and out-of-range values fail as in ``yolo``.
    ``overrides`` itself is left unchanged (``check_cfg`` rewrites some values of the dict it is given).
    """
    log = logging.getLogger(LOGGER.name)
    level = log.level
    log.setLevel(logging.WARNING)  # on an unknown key Ultralytics logs its whole CLI help before raising
    try:
        check_dict_alignment(DEFAULT_CFG_DICT, overrides)
        check_cfg(dict(overrides), hard=True)
    except (SyntaxError, TypeError) as exc:  # unknown key / wrong type or range
        raise ValueError(_message(exc)) from None
    finally:
        log.setLevel(level)


def _message(exc: Exception) -> str:
    """Ultralytics' error text on one line, without colour codes or the CLI help some versions add."""
    text = " ".join(_ANSI.sub("", str(exc)).split())
    for marker in _HELP_STARTS:
        text = text.split(marker)[0]
    return text.strip()


def parse_cli_tokens(argv: list[str]) -> dict[str, Any]:
    """``key=value`` tokens read with Ultralytics' parser and its value types; a bare boolean key means True.

    Tokens split around ``=`` by the shell (``lr0 = 0.01``) are joined first, as ``yolo`` does. A missing value
    or a word that is neither ``key=value`` nor a boolean key raises ``ValueError``.
    """
    overrides: dict[str, Any] = {}
    for token in merge_equals_args(list(argv)):
        if "=" in token:
            try:
                key, value = parse_key_value_pair(token)
            except AssertionError as exc:  # empty value
                raise ValueError(f"{exc} in {token!r}") from None
            overrides[key] = value
        elif isinstance(DEFAULT_CFG_DICT.get(token), bool):
            overrides[token] = True
        else:
            raise ValueError(f"{token!r} is not a key=value argument (e.g. epochs=10)")
    return overrides
