"""Resource models, event schemas and subjects: the contracts every service and tool shares.

Where to look:
- `handler`, `module`, `version` — the gati.dev resources (pydantic, camelCase on the wire);
  `objects.parse_object` reads any of them and raises `InvalidObjectError` with advice.
- `fieldtypes`, `durations`, `quantities` — the value forms users write, checked in one place.
- `problems` — validation errors as `spec.path: must be … such as …` lines.
- `conditions` — metav1.Condition and `set_condition` (transition time moves with status only).
- `crds` — the CustomResourceDefinitions generated from the models.
- `events`, `headers` — bus messages (msgspec, JSON) and their headers and de-duplication ids;
  `asyncapi` describes every subject for tools outside Python.
- `routing` — the version resolver routers use: by id, as of a date, by weight.
- `kinds`, `tokens`, `subjects` — kind names, the subject token encoding, subject builders.
- `labels` — labels, annotations and the field manager services write.
"""
