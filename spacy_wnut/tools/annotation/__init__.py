"""The annotation loop: a pipeline's predictions out to Label Studio, doccano or Prodigy for correction,
the corrections back as a DocBin for `spacy train`.

- `selection`: the per-text uncertainty and which texts to send (`--select uncertain|random|all`).
- `predict`: the pipeline's entities, entity scores and uncertainty per input record.
- `label_studio`, `doccano`, `prodigy`: one module per tool: its task format out, its export back in.
- `export`: `export-tasks`; `importer`: `import-tasks`, every repair counted and located.
"""
