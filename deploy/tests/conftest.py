"""Shared helpers for the deploy/ tests: the templates, parsed with CloudFormation's short tags."""
import os

import pytest
import yaml

DEPLOY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(DEPLOY, "swiftnfs.yaml")
HA_TEMPLATE = os.path.join(DEPLOY, "swiftnfs-ha.yaml")


class CfnLoader(yaml.SafeLoader):
    """YAML with !Ref, !GetAtt, !Sub ... turned into their long forms ({"Ref": ...})."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load_template(path=TEMPLATE):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


@pytest.fixture(scope="session")
def template():
    return load_template()


@pytest.fixture(scope="session")
def resources(template):
    return template["Resources"]


@pytest.fixture(scope="session")
def ha_template():
    return load_template(HA_TEMPLATE)


@pytest.fixture(scope="session")
def ha_resources(ha_template):
    return ha_template["Resources"]


def read(name):
    with open(os.path.join(DEPLOY, name), encoding="utf-8") as f:
        return f.read()
