"""Settings as data: dataclasses built from a plain dict (a JSON preset, a checkpoint, parsed flags)."""
import json
import re
from dataclasses import fields
from pathlib import Path

from .errors import UserError

DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


class Settings:
    @classmethod
    def from_dict(cls, values: dict):
        """The settings this class knows, taken from `values`; the others are left for other classes."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def parse_duration(text: str) -> float:
    """"90s", "10m", "1h", "1h30m", "2.5m" or plain seconds ("600") -> seconds, > 0; anything else is refused."""
    text = str(text).strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        match = DURATION.fullmatch(text)
        if not text or match is None or not any(match.groups()):
            raise UserError(f"--time-budget {text!r} is not a duration (e.g. 90s, 10m, 1h30m, or seconds)") from None
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not 0 < seconds < 10 * 365 * 86400:
        raise UserError(f"--time-budget must be a positive duration, got {text!r}")
    return seconds


def read_json_object(path: str | Path, what: str) -> dict:
    """A JSON file holding one object (a preset, a search space), or one line saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(values, dict) or not values:
        raise UserError(f"{path} must hold one JSON object ({what})")
    return values


def resolve(given: dict, *config_classes) -> list:
    """Each config: its defaults, then the --config preset, then the flags given on the command line."""
    values = {}
    if "config" in given:
        path = Path(given["config"])
        values = read_json_object(path, "config file")
        known = {f.name: f for cls in config_classes for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise UserError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        for name, value in values.items():
            check_type(path, name, value, known[name].default)
    values.update({k: v for k, v in given.items() if k not in ("config", "command", "task", "resume", "handler")})
    return [cls.from_dict(values) for cls in config_classes]


def check_type(path, name: str, value, default) -> None:
    """A preset value must have the type of the setting's default (an int may stand for a float)."""
    if default is None or value is None:
        return
    expected = type(default)
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    ok = ok or (expected is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise UserError(f"{path}: {name} should be {expected.__name__}, got {value!r}")
