"""Regenerate crds/*.yaml from the pydantic models (run by `make crds`)."""

from pathlib import Path

import yaml

from falco_reporter.models.crds import build_crds

root = Path(__file__).resolve().parent.parent
for crd in build_crds():
    path = root / "crds" / f"{crd['spec']['names']['plural']}.yaml"
    path.write_text(yaml.safe_dump(crd, sort_keys=False, width=110), encoding="utf-8")
    print(f"wrote {path.relative_to(root)}")
