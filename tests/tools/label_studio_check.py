"""Run in the label-studio-sdk venv (`label_studio_venv.sh sdk`), not in the project's env: Label Studio's
own code reads what `export-tasks` wrote and converts an annotated export to CoNLL.

    python label_studio_check.py CONFIG.xml TASKS.json ANNOTATED_EXPORT.json OUTDIR

Prints one JSON object: `config_errors` (LabelInterface.validate), `prediction_errors` (per task, from
LabelInterface.validate_prediction), and `entities`: per CoNLL sentence, the [label, "token token"]
groups of its BIO tags, in the order the converter wrote them.
"""

import json
import sys
from pathlib import Path

from label_studio_sdk.converter import Converter
from label_studio_sdk.label_interface import LabelInterface


def conll_entities(path: Path):
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            sentences.append(current)
            current = []
            continue
        token, *_, tag = line.split(" ")
        current.append((token, tag))
    if current:
        sentences.append(current)
    result = []
    for sentence in sentences:
        entities = []
        for token, tag in sentence:
            if tag.startswith("B-") or (tag.startswith("I-") and (not entities or entities[-1][0] != tag[2:])):
                entities.append([tag[2:], [token]])
            elif tag.startswith("I-"):
                entities[-1][1].append(token)
        result.append([[label, " ".join(tokens)] for label, tokens in entities])
    return result


def main(config_path: str, tasks_path: str, export_path: str, outdir: str) -> None:
    config = Path(config_path).read_text(encoding="utf-8")
    interface = LabelInterface(config)
    try:
        interface.validate()
        config_errors = []
    except Exception as err:  # the SDK's validation errors have no common public base
        config_errors = [f"{type(err).__name__}: {err}"]
    prediction_errors = []
    for task in json.loads(Path(tasks_path).read_text(encoding="utf-8")):
        for prediction in task.get("predictions", []):
            prediction_errors.append(interface.validate_prediction(prediction, return_errors=True))
    converter = Converter(config=config, project_dir=None, download_resources=False)
    converter.convert(export_path, outdir, "CONLL2003", is_dir=False)
    entities = conll_entities(Path(outdir) / "result.conll")
    print(json.dumps({"config_errors": config_errors, "prediction_errors": prediction_errors, "entities": entities}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
