"""One registry mechanism for every kind of plugin: readers, metric families, unit tokenizers,
model adapters, tasks, exports.

Inside slmeval a plugin registers with a decorator where it is defined::

    READERS = Registry("reader", group="slmeval.readers", package="slmeval.data")

    @READERS.register("zerospeech_sblimp")          # in any module of slmeval/data/
    def read_zerospeech_sblimp(path, split="dev"): ...      # a reader function is named after its reader

The registry finds the built-ins by importing every module of its `package` (pkgutil.iter_modules, one
level), so a new built-in plugin is one new file in that folder and nothing else: no list to extend.

Another package registers through the entry-point group of that kind, in its pyproject.toml::

    [project.entry-points."slmeval.readers"]
    my_layout = "my_pkg.readers:read_my_layout"

Loading is lazy: the package's modules are imported, and entry points loaded, the first time the registry
is asked for a name or a listing — so `import slmeval` stays light and a broken third-party plugin
only matters when it is used (a listing shows it as broken, with the reason).
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class PluginError(ValueError):
    """A plugin name that is unknown, defined twice, or whose entry point fails to load."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T | None
    origin: str                 # "slmeval.data.zerospeech" or "entry point my_layout = pkg.mod:fn (dist 1.0)"
    error: str | None = None    # set when an entry point failed to load

    @property
    def summary(self) -> str:
        """One line for listings: the plugin's `description` attribute, else its docstring's first
        sentence (a docstring's first line is often half a sentence, wrapped at the line length)."""
        if self.error is not None:
            return f"BROKEN: {self.error}"
        text = getattr(self.obj, "description", None)
        if not isinstance(text, str) or not text.strip():
            # a class's or function's own docstring only: an inherited one (or an instance's class
            # docstring) describes the base type, not this plugin
            own = (self.obj.__dict__.get("__doc__") if isinstance(self.obj, type) else
                   self.obj.__doc__ if inspect.isroutine(self.obj) else None)
            text = inspect.cleandoc(own) if isinstance(own, str) else ""
        return first_sentence(text)


def first_sentence(text: str) -> str:
    """The first sentence of the first paragraph, on one line: up to the first '.', '!' or '?' followed
    by a space or the end, outside brackets and quotes ("e.g. x" or "(i.e. y)" do not end it)."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    depth, quoted = 0, False
    for i, char in enumerate(paragraph):
        if char == "`":
            quoted = not quoted
        elif char in "([{" and not quoted:
            depth += 1
        elif char in ")]}" and not quoted:
            depth = max(depth - 1, 0)
        elif char in ".!?" and not depth and not quoted and (i + 1 == len(paragraph) or paragraph[i + 1] == " ") \
                and not paragraph[max(0, i - 3):i + 1].lower().endswith(("e.g.", "i.e.", "etc.", "vs.")):
            return paragraph[:i + 1]
    return paragraph


class Registry(Generic[T]):
    def __init__(self, kind: str, *, group: str, package: str | None = None) -> None:
        self.kind = kind                # human name used in messages: "reader", "model adapter", ...
        self.group = group              # entry-point group other packages register under
        self.package = package          # the package whose modules register the built-in plugins
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        self._loading = False

    # -- registration ---------------------------------------------------------------------------

    def register(self, name: str, obj: T | None = None, *, origin: str | None = None,
                 replace: bool = False) -> Callable[[T], T] | T:
        """`@REG.register("name")` on a definition, or `REG.register("name", obj)`."""
        def add(target: T) -> T:
            where = origin or getattr(target, "__module__", None) or "?"
            old = self._entries.get(name)
            if old is not None and not replace and old.obj is not target and not _same_definition(old, target, where):
                raise PluginError(f"{self.kind} {name!r} is registered twice: by {old.origin} and by {where}")
            self._entries[name] = Entry(name, target, where)
            return target

        return add if obj is None else add(obj)

    # -- lookup -----------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True            # a built-in module may look names up while it is imported
        try:
            for module in builtin_modules(self.package):
                importlib.import_module(module)
            for ep in entry_points(group=self.group):
                origin = f"entry point {ep.name} = {ep.value}" + (f" ({ep.dist.name} {ep.dist.version})"
                                                                  if ep.dist is not None else "")
                if ep.name in self._entries:
                    known = self._entries[ep.name]
                    if known.origin != origin:
                        self._entries[ep.name] = Entry(ep.name, None, origin, error=(
                            f"{self.kind} {ep.name!r} is registered twice: by {known.origin} and by {origin}"))
                    continue
                try:
                    self._entries[ep.name] = Entry(ep.name, ep.load(), origin)
                except Exception as err:   # a broken plugin must not block unrelated ones
                    log.debug("entry point %s failed", origin, exc_info=True)
                    self._entries[ep.name] = Entry(ep.name, None, origin,
                                                   error=f"{type(err).__name__}: {err}")
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name: str) -> T:
        self._ensure_loaded()
        entry = self._entries.get(name)
        if entry is None:
            raise PluginError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or 'none'} "
                              f"(others can be added through the entry-point group {self.group!r})")
        if entry.error is not None:
            raise PluginError(f"{self.kind} {name!r} from {entry.origin} cannot be used: {entry.error}")
        return entry.obj  # type: ignore[return-value]

    def call(self, name: str, *args, shape: str, passthrough: tuple[type[BaseException], ...] = (),
             **kwargs):
        """Call plugin `name`. A plugin from another package that cannot be called this way, or that fails
        with anything but the errors it is meant to raise (`passthrough`), becomes one PluginError naming
        it, where it came from, and where it raised — not a traceback from deep inside slmeval. `shape`
        is the calling convention shown to its author, e.g. "fn(path, **options) -> list[Pair]"."""
        obj = self.get(name)
        origin = self._entries[name].origin
        if not origin.startswith("entry point"):
            return obj(*args, **kwargs)        # slmeval's own: a failure here is our bug, keep its traceback
        self.check_call(name, *args, shape=shape, **kwargs)
        try:
            return obj(*args, **kwargs)
        except (PluginError, *passthrough):
            raise
        except Exception as err:
            frame = _plugin_frame(obj, err)
            raise PluginError(f"{self.kind} {name!r} from {origin} failed ({frame.filename}, line {frame.lineno}): "
                              f"{type(err).__name__}: {err}") from err

    def check_call(self, name: str, *args, shape: str, **kwargs) -> None:
        """PluginError unless plugin `name` accepts these arguments (placeholders will do): lets a run refuse
        a plugin with the wrong signature before the work whose result it would be handed."""
        obj = self.get(name)                   # unknown or broken: its own PluginError
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):        # no signature to inspect (a builtin): calling it will tell
            return
        try:
            signature.bind(*args, **kwargs)
        except TypeError as err:
            raise PluginError(f"{self.kind} {name!r} from {self.origin(name)} cannot be called as {shape}: "
                              f"{err}") from None

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        """Every registered plugin, broken ones included (their `error` says why)."""
        self._ensure_loaded()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def origin(self, name: str) -> str:
        self._ensure_loaded()
        return self._entries[name].origin

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r})"


def builtin_modules(package: str | None) -> list[str]:
    """Every module of `package` (one level, sorted: a stable registration order), by name. Importing
    them is what registers the built-ins; a module that registers nothing costs only its import."""
    if package is None:
        return []
    folder = importlib.import_module(package).__path__
    return [f"{package}.{info.name}" for info in sorted(pkgutil.iter_modules(folder), key=lambda i: i.name)]


def _plugin_frame(obj: object, err: BaseException) -> traceback.FrameSummary:
    """The innermost frame of the traceback inside the plugin's own package (where its author looks),
    else the innermost one (the plugin called a library with the wrong arguments, say)."""
    frames = traceback.extract_tb(err.__traceback__)
    top = sys.modules.get((getattr(obj, "__module__", None) or "").split(".")[0])
    home = getattr(top, "__file__", None)
    if home:
        folder = os.path.dirname(home) if os.path.basename(home) == "__init__.py" else home
        mine = [f for f in frames if f.filename.startswith(folder)]
        if mine:
            return mine[-1]
    return frames[-1]


def _same_definition(old: Entry, target: object, where: str) -> bool:
    """The same definition from the same module executed again (a Python task file is re-run by every
    evaluate() in one process: a sweep, a notebook): it replaces its earlier self instead of clashing."""
    return old.origin == where and old.obj is not None \
        and getattr(old.obj, "__qualname__", None) == getattr(target, "__qualname__", object())
