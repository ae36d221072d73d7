"""The Kubernetes API server's patch and selector semantics, in plain Python.

Used by the API stand-in (``kube_standin.py``):

- :func:`json_patch` — RFC 6902 (``application/json-patch+json``), incl. ``test``;
- :func:`merge_patch` — RFC 7386 (``application/merge-patch+json``);
- :func:`strategic_merge` — ``application/strategic-merge-patch+json`` for the
  fields mltui touches: lists of containers, env, volumes… merge by their key
  (``name``, ``mountPath``, ``containerPort``, ``type``…) as the real patch-merge-key
  tags say; other lists are replaced; ``null`` deletes; ``$patch: delete|replace``
  and ``$setElementOrder/…`` directives are understood (the latter ignored);
- :func:`parse_label_selector` / :func:`parse_field_selector` — ``=``, ``==``, ``!=``,
  ``in``, ``notin``, exists and ``!``-not-exists.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any


class PatchError(Exception):
    """A patch that cannot be applied (the server answers 422 Invalid)."""


# ----------------------------------------------------------------- JSON patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict):
            if part not in node:
                raise PatchError(f'doc is missing path: "{path}"')
            node = node[part]
        elif isinstance(node, list):
            node = node[_index(node, part, path)]
        else:
            raise PatchError(f'doc is missing path: "{path}"')
    return node


def _index(node: list[Any], part: str, path: str, allow_end: bool = False) -> int:
    if part == "-" and allow_end:
        return len(node)
    if not part.isdigit():
        raise PatchError(f'invalid array index "{part}" in "{path}"')
    i = int(part)
    if i > len(node) or (i == len(node) and not allow_end):
        raise PatchError(f'array index out of bounds in "{path}"')
    return i


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'doc is missing key: "{path}"')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path)]
    raise PatchError(f'doc is missing path: "{path}"')


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'unable to remove nonexistent key: "{path}"')
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path))
    raise PatchError(f'doc is missing path: "{path}"')


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f'replace operation does not apply: doc is missing key: "{path}"')
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, path)] = value
        else:
            parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f'doc is missing path: "{path}"')
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 operation list to a copy of ``doc``."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch is a list of operations")
    out = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            out = _add(out, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(out, path)
        elif kind == "replace":
            out = _add(out, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "move":
            value = _remove(out, op["from"])
            out = _add(out, path, value)
        elif kind == "copy":
            out = _add(out, path, copy.deepcopy(_get(out, op["from"])))
        elif kind == "test":
            if _get(out, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f'unexpected kind: "{kind}"')
    return out


# ---------------------------------------------------------------- merge patch


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# ------------------------------------------------------ strategic merge patch

# patchMergeKey of the list fields mltui (and kubectl) patch, from the API's Go tags.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
}


def strategic_merge(doc: Any, patch: Any) -> Any:
    """Apply a strategic-merge patch (the subset of semantics the built-in types need)."""
    return _smp(doc, patch, None)


def _smp(doc: Any, patch: Any, field_name: str | None) -> Any:
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
        for key, value in patch.items():
            if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
                continue
            if key.startswith("$deleteFromPrimitiveList/"):
                target = key.split("/", 1)[1]
                out[target] = [v for v in out.get(target, []) if v not in value]
                continue
            if value is None:
                out.pop(key, None)
            elif isinstance(value, list) and key in MERGE_KEYS:
                out[key] = _merge_list(out.get(key) or [], value, MERGE_KEYS[key], key)
            else:
                out[key] = _smp(out.get(key), value, key)
        return out
    return copy.deepcopy(patch)


def _merge_list(current: list[Any], patch: list[Any], key: str, field_name: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    out = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"{field_name}: map merge key {key} is missing in {item!r}")
        pos = next(
            (i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if pos is not None:
                out.pop(pos)
            continue
        if pos is None:
            out.append(_smp({}, item, field_name))
        else:
            out[pos] = _smp(out[pos], item, field_name)
    return out


# ------------------------------------------------------------------ selectors

Matcher = Callable[[dict[str, str]], bool]

_REQUIREMENT = re.compile(
    r"""^\s*(?:
        (?P<notexists>!\s*(?P<nk>[A-Za-z0-9./_-]+))
      | (?P<setkey>[A-Za-z0-9./_-]+)\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
      | (?P<key>[A-Za-z0-9./_-]+)\s*(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)
      | (?P<exists>[A-Za-z0-9./_-]+)
    )\s*$""",
    re.VERBOSE,
)


def _split_top(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def parse_label_selector(selector: str | None) -> Matcher:
    """A predicate over a labels dict; ValueError on a malformed selector."""
    if not selector:
        return lambda labels: True
    tests: list[Matcher] = []
    for part in _split_top(selector):
        m = _REQUIREMENT.match(part)
        if m is None:
            raise ValueError(f'unable to parse requirement: "{part.strip()}"')
        if m.group("notexists"):
            k = m.group("nk")
            tests.append(lambda labels, k=k: k not in labels)
        elif m.group("setkey"):
            k = m.group("setkey")
            values = {v.strip() for v in m.group("values").split(",") if v.strip()}
            if m.group("setop") == "in":
                tests.append(lambda labels, k=k, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=k, vs=values: labels.get(k) not in vs)
        elif m.group("key"):
            k, v = m.group("key"), m.group("value")
            if m.group("op") == "!=":
                tests.append(lambda labels, k=k, v=v: labels.get(k) != v)
            else:
                tests.append(lambda labels, k=k, v=v: labels.get(k) == v)
        else:
            k = m.group("exists")
            tests.append(lambda labels, k=k: k in labels)
    return lambda labels: all(t(labels) for t in tests)


def parse_field_selector(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over an object for ``metadata.name=x,metadata.namespace!=y``."""
    if not selector:
        return lambda obj: True
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split_top(selector):
        m = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if m is None:
            raise ValueError(f'invalid field selector: "{part.strip()}"')
        path, op, value = m.group(1), m.group(2), m.group(3)

        def lookup(obj: dict[str, Any], path: str = path) -> str:
            node: Any = obj
            for key in path.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            return "" if node is None else str(node)

        if op == "!=":
            tests.append(lambda obj, f=lookup, v=value: f(obj) != v)
        else:
            tests.append(lambda obj, f=lookup, v=value: f(obj) == v)
    return lambda obj: all(t(obj) for t in tests)
