"""Turn Kubernetes OpenAPI definitions and CRD schemas into kubeconform's strict JSON schemas.

    openapi2jsonschema.py kubernetes SWAGGER_JSON OUT_DIR
        one file per kind of the Kubernetes API (swagger.json of a Kubernetes release), named
        as kubeconform looks them up: <kind>[-<group>]-<version>.json
    openapi2jsonschema.py crd OUT_DIR CRD_YAML...
        one file per served version of each CustomResourceDefinition: <group>/<kind>_<version>.json

Every file is self-contained (the definitions it needs are carried under "definitions") and
strict: an object that lists its properties accepts no others, unless the API says it keeps
unknown fields. apiVersion and kind are pinned to the values of the file's kind. Descriptions
are dropped: they are not used to validate and would make the files several times larger.
Quantities and int-or-string values accept what the API server accepts (a string or a number).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DRAFT = "http://json-schema.org/draft-04/schema#"
REF_PREFIX = "#/definitions/"
INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
NUMBER_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "number"}]}
SPECIAL_DEFINITIONS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": INT_OR_STRING,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": NUMBER_OR_STRING,
}
# Annotations that carry no validation; "nullable" is folded into "type" below.
DROPPED = {"description", "example", "externalDocs", "nullable", "x-kubernetes-embedded-resource"}

Schema = dict[str, Any]


def convert(node: Schema) -> Schema:
    """One schema node, converted recursively (keywords that hold schemas are walked)."""
    int_or_string = node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string")
    if int_or_string and "anyOf" not in node and "oneOf" not in node:
        return dict(INT_OR_STRING)
    keeps_unknown = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    out: Schema = {}
    for key, value in node.items():
        if key in DROPPED or key.startswith("x-"):
            continue
        if key == "properties":
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = convert(value)
        elif key in ("items", "allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [convert(sub) for sub in value]
        else:
            out[key] = value
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


def references(node: Any) -> Iterable[str]:
    """The definition names a converted schema refers to, directly."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                yield value[len(REF_PREFIX) :]
            else:
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def pin_kind(schema: Schema, *, api_version: str, kind: str) -> Schema:
    """Restrict apiVersion and kind of a top-level schema to one kind's values."""
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string", "enum": [api_version]}
    properties["kind"] = {"type": "string", "enum": [kind]}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
    return schema


def kubeconform_name(kind: str, group: str, version: str) -> str:
    """The file name kubeconform derives from a kind and its apiVersion (its KindSuffix)."""
    suffix = f"-{group.split('.')[0].lower()}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


def kubernetes_schemas(swagger: Schema) -> dict[str, Schema]:
    """A strict schema per kind in a Kubernetes swagger.json, by kubeconform file name."""
    definitions = swagger["definitions"]
    converted = {
        name: SPECIAL_DEFINITIONS.get(name) or convert(body) for name, body in definitions.items()
    }
    out: dict[str, Schema] = {}
    for name, body in sorted(definitions.items()):
        for gvk in body.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            api_version = f"{group}/{version}" if group else version
            root = pin_kind(
                json.loads(json.dumps(converted[name])), api_version=api_version, kind=kind
            )
            needed: dict[str, Schema] = {}
            pending = list(references(root))
            while pending:
                ref = pending.pop()
                if ref not in needed:
                    needed[ref] = converted[ref]
                    pending.extend(references(needed[ref]))
            schema: Schema = {"$schema": DRAFT, **root}
            if needed:
                schema["definitions"] = dict(sorted(needed.items()))
            out[kubeconform_name(kind, group, version)] = schema
    return out


def crd_schemas(documents: Iterable[Any]) -> dict[str, Schema]:
    """A strict schema per served version of each CRD, by <group>/<kind>_<version>.json."""
    out: dict[str, Schema] = {}
    for crd in documents:
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        group, kind = spec["group"], spec["names"]["kind"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            body = version["schema"]["openAPIV3Schema"]
            root = pin_kind(convert(body), api_version=f"{group}/{version['name']}", kind=kind)
            out[f"{group}/{kind.lower()}_{version['name']}.json"] = {"$schema": DRAFT, **root}
    return out


def write(schemas: dict[str, Schema], out_dir: Path) -> None:
    """Write each schema as sorted, indented JSON (stable diffs for the files kept in git)."""
    for relative, schema in schemas.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    kube = commands.add_parser("kubernetes", help="kinds of a Kubernetes swagger.json")
    kube.add_argument("swagger", type=Path)
    kube.add_argument("out_dir", type=Path)
    crd = commands.add_parser("crd", help="served versions of CustomResourceDefinitions")
    crd.add_argument("out_dir", type=Path)
    crd.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "kubernetes":
        schemas = kubernetes_schemas(json.loads(args.swagger.read_text()))
    else:
        # Only CRDs are YAML: the Kubernetes conversion needs the standard library alone.
        import yaml

        documents: list[Any] = []
        for path in args.files:
            documents.extend(yaml.safe_load_all(path.read_text()))
        schemas = crd_schemas(documents)
    write(schemas, args.out_dir)
    print(f"{len(schemas)} schemas written to {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
