"""Stripe's object schema, as the official `stripe` Python package types it, dumped as JSON.

Run with a Python that has `stripe` installed (the tests' venv pins `stripe==16.*`, whose
types are those of the API version it pins). Prints to stdout:

    {"package": "16.1.0", "api_version": "2026-10-28.endive",
     "types": {"invoice": NODE, "charge": NODE, ...}}

keyed by each resource's `OBJECT_NAME`. A NODE says what a field may hold:

    null                          a scalar (string, number, boolean, enum, ...)
    {"free": true}                a free-form map (`metadata` and other untyped hashes)
    {"fields": {name: NODE}}      a nested object with exactly these fields
    {"refs": ["charge", ...]}     an object of one of these resource types (an expanded
                                  `ExpandableField[X]`, or an embedded resource)

`fields` and `refs` may appear together (a union). Lists (`List[X]`) are described by their
element's NODE; a `ListObject[X]` is `{"fields": {"object", "data": X, "has_more", "url"}}`.
Only the package's annotations are read: nothing is requested from Stripe.
"""

import ast
import importlib
import inspect
import json
import pkgutil
import sys
import typing

import stripe
from stripe._list_object import ListObject
from stripe._search_result_object import SearchResultObject
from stripe._stripe_object import StripeObject, UntypedStripeObject

# Not v1 API objects (v2 has its own schema) or not objects at all.
SKIP_PREFIXES = ("stripe.params", "stripe.v2", "stripe.events")

FREE = {"free": True}
LEAF = None


def modules():
    found = []
    for info in pkgutil.walk_packages(stripe.__path__, "stripe."):
        name = info.name
        if name.startswith(SKIP_PREFIXES) or name.endswith("_service"):
            continue
        found.append(importlib.import_module(name))
    return found


def resource_classes(mods):
    """Every class with its own OBJECT_NAME, by OBJECT_NAME (lists are containers, not types)."""
    found = {}
    for mod in mods:
        for value in vars(mod).values():
            if (
                isinstance(value, type)
                and issubclass(value, StripeObject)
                and not issubclass(value, (ListObject, SearchResultObject))
                and value.__module__ == mod.__name__
                and isinstance(value.__dict__.get("OBJECT_NAME"), str)
            ):
                found.setdefault(value.OBJECT_NAME, set()).add(value)
    return found


_type_checking_imports = {}


def type_checking_names(module_name):
    """Names a module imports only under `if TYPE_CHECKING:` (its forward references)."""
    if module_name in _type_checking_imports:
        return _type_checking_imports[module_name]
    names = {}
    source = inspect.getsource(sys.modules[module_name])
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module:
                if stmt.module.startswith("stripe.params"):
                    continue
                for alias in stmt.names:
                    names[alias.asname or alias.name] = (stmt.module, alias.name)
    _type_checking_imports[module_name] = names
    return names


def resolve(name, module_name):
    names = type_checking_names(module_name)
    if name in names:
        target, attr = names[name]
        return getattr(importlib.import_module(target), attr)
    module = sys.modules[module_name]
    if hasattr(module, name):
        return getattr(module, name)
    raise NameError(f"{name} (forward reference in {module_name})")


def merge(a, b):
    if a is LEAF:
        return b
    if b is LEAF:
        return a
    if a.get("free") or b.get("free"):
        return FREE
    out = {}
    if "fields" in a or "fields" in b:
        fields = dict(a.get("fields", {}))
        for key, node in b.get("fields", {}).items():
            fields[key] = merge(fields[key], node) if key in fields else node
        out["fields"] = fields
    refs = sorted(set(a.get("refs", [])) | set(b.get("refs", [])))
    if refs:
        out["refs"] = refs
    return out


class Walker:
    def __init__(self):
        self.expanding = []

    def node(self, tp, module_name):
        if isinstance(tp, str):
            tp = typing.ForwardRef(tp)
        if isinstance(tp, typing.ForwardRef):
            return self.node(resolve(tp.__forward_arg__, module_name), module_name)
        if tp is typing.Any:
            return FREE
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Union:
            result = LEAF
            for arg in args:
                result = merge(result, self.node(arg, module_name))
            return result
        if origin in (list, typing.List, tuple, set):
            return self.node(args[0], module_name) if args else FREE
        if origin in (dict, typing.Dict) or origin is UntypedStripeObject:
            return FREE
        if origin is ListObject:
            item = self.node(args[0], module_name) if args else FREE
            return {"fields": {"object": LEAF, "data": item, "has_more": LEAF, "url": LEAF}}
        if origin is not None:
            return LEAF  # Literal[...] and the like
        if isinstance(tp, type) and issubclass(tp, StripeObject):
            if tp is UntypedStripeObject or tp is StripeObject:
                return FREE
            if tp is ListObject:
                return {"fields": {"object": LEAF, "data": FREE, "has_more": LEAF, "url": LEAF}}
            if isinstance(tp.__dict__.get("OBJECT_NAME"), str):
                return {"refs": [tp.OBJECT_NAME]}
            if tp in self.expanding:
                return FREE  # a nested class that contains itself
            return {"fields": self.fields(tp)}
        return LEAF

    def fields(self, cls):
        self.expanding.append(cls)
        fields = {}
        remap = getattr(cls, "_field_remappings", {}) or {}
        for base in reversed(cls.__mro__):
            if not (isinstance(base, type) and issubclass(base, StripeObject)):
                continue
            for name, tp in base.__dict__.get("__annotations__", {}).items():
                if name.startswith("_") or typing.get_origin(tp) is typing.ClassVar:
                    continue
                json_name = remap.get(name, name)
                node = self.node(tp, base.__module__)
                fields[json_name] = (
                    merge(fields[json_name], node) if json_name in fields else node
                )
        self.expanding.pop()
        return fields


def main():
    mods = modules()
    walker = Walker()
    types = {}
    for object_name, classes in sorted(resource_classes(mods).items()):
        node = LEAF
        for cls in sorted(classes, key=lambda c: c.__qualname__):
            node = merge(node, {"fields": walker.fields(cls)})
        types[object_name] = node
    json.dump(
        {
            "package": stripe.VERSION,
            "api_version": stripe.api_version,
            "types": types,
        },
        sys.stdout,
        sort_keys=True,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
