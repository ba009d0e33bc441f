"""Python as a run-time install has it: torch, transformers and spacy-transformers are not installed
(their imports fail, and spacy-transformers' entry points are not there)."""

import importlib.metadata
import sys

TRAINING = {"torch", "transformers", "spacy_transformers"}
_entry_points = importlib.metadata.entry_points


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in TRAINING:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the run-time install)")
        return None


def entry_points(**params):
    found = _entry_points(**params)
    found = [ep for group in found.values() for ep in group] if isinstance(found, dict) else list(found)
    return importlib.metadata.EntryPoints(ep for ep in found if ep.dist.name.replace("-", "_") not in TRAINING)


sys.meta_path.insert(0, _NotInstalled())
importlib.metadata.entry_points = entry_points
