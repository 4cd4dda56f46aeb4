"""Packages imported without running their ``__init__`` until something needs it.

aiohttp's ``__init__`` imports its HTTP client, which builds two TLS contexts (reading
the CA store twice), though servind uses the client only to pull images: skipping it
takes a sixth off the daemon's start and 4 MiB off its memory.

A shallow package is the package's module object without its ``__init__`` run:
``import aiohttp.web`` loads ``aiohttp.web`` and what that imports, nothing else.
The first lookup of a name only the ``__init__`` defines (``aiohttp.ClientSession``)
runs the ``__init__`` into the same module, so code using the full package still works.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
import types
from importlib.machinery import ModuleSpec

SHALLOW_PACKAGES = ("aiohttp",)

# Submodules may read the package's version (aiohttp.http does, at import): a literal
# ``__version__`` of the ``__init__`` is set without running the rest of it.
_VERSION_LINE = re.compile(r'^__version__ = "([^"\n]+)"$', re.MULTILINE)


def install(names: tuple[str, ...] = SHALLOW_PACKAGES) -> None:
    """Make these packages shallow, unless something imported them already."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            sys.modules[name] = shallow_package(spec)


def shallow_package(spec: ModuleSpec) -> types.ModuleType:
    module = importlib.util.module_from_spec(spec)
    lock = threading.Lock()
    full = False

    def complete(attribute: str) -> object:
        # ``from package import submodule`` asks the package for the name first.
        if importlib.util.find_spec(f"{spec.name}.{attribute}") is not None:
            return importlib.import_module(f"{spec.name}.{attribute}")
        nonlocal full
        with lock:
            if not full:
                full = True
                del module.__dict__["__getattr__"]
                assert spec.loader is not None
                spec.loader.exec_module(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = complete
    get_source = getattr(spec.loader, "get_source", None)
    source = get_source(spec.name) if get_source else None
    if source and (version := _VERSION_LINE.search(source)):
        module.__dict__["__version__"] = version.group(1)
    return module
