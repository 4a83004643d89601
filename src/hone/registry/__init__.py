"""The model registry (records only): registered models, their immutable numbered
versions with lineage and signature, aliases and the audit trail of their moves, and each
version's exported files. Building, exporting and loading models is ``hone.models``'s."""

from hone.registry.aliases import ANY, AliasEvent, alias_history, aliases_of, move_alias
from hone.registry.exports import Export, get_export, list_exports, record_export
from hone.registry.refs import ModelRef, check_alias, check_model_name, parse_model_ref
from hone.registry.versions import (
    ModelInfo,
    ModelVersion,
    delete_version,
    get_version,
    insert_version,
    list_models,
    list_versions,
)

__all__ = [
    "ANY",
    "AliasEvent",
    "Export",
    "ModelInfo",
    "ModelRef",
    "ModelVersion",
    "alias_history",
    "aliases_of",
    "check_alias",
    "check_model_name",
    "delete_version",
    "get_export",
    "get_version",
    "insert_version",
    "list_exports",
    "list_models",
    "list_versions",
    "move_alias",
    "parse_model_ref",
    "record_export",
]
