"""The template as CloudFormation receives it, after SAM's transform, run locally.

    python infra/transform.py [--template infra/template.yaml] [--param Key=Value ...]
                              [--json | --count [--limit 500]]

--json prints the transformed template; --count prints its number of resources by type
and fails when the total is above --limit (CloudFormation refuses a stack of more than
500 resources). No AWS credentials are needed: the transform runs in-process.
"""

import argparse
import collections
import json
import logging
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names no managed policy by name, so none needs looking up."""

    def load(self):
        return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="infra/template.yaml")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--count", action="store_true")
    parser.add_argument("--limit", type=int, default=500)
    args = parser.parse_args()

    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    # The translator warns once per function that its feature toggles are not
    # configured (they live in AWS); that is the default it should use.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    with open(args.template, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # What `sam package` would upload: a local CodeUri becomes an S3 location, as
    # `sam validate` does it.
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(
            props.get("CodeUri"), str
        ) and not props["CodeUri"].startswith("s3://"):
            props["CodeUri"] = "s3://artifacts/function.zip"
    parameters = dict(p.split("=", 1) for p in args.param)
    out = transform(template, parameters, NoManagedPolicies())

    if args.json:
        json.dump(out, sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    kinds = collections.Counter(r["Type"] for r in out["Resources"].values())
    total = sum(kinds.values())
    if args.count:
        for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{n:5}  {kind}")
    print(f"{total:5}  resources in all (CloudFormation's limit: {args.limit})")
    return 1 if total > args.limit else 0


if __name__ == "__main__":
    sys.exit(main())
