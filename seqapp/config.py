"""Settings as data: dataclasses built from a plain dict (a JSON preset, a checkpoint, parsed flags)."""
from dataclasses import fields


class Settings:
    @classmethod
    def from_dict(cls, values: dict):
        """The settings this class knows, taken from `values`; the others are left for other classes."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
