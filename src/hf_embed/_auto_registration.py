"""Registering hf-embed with transformers' Auto classes without importing transformers.

`import hf_embed` promises that `AutoConfig`, `AutoModel` and `AutoModelForCausalLM` know the `hf_embed`
model type, but it must not import transformers itself: `PretrainedConfig` imports torch, the model
classes cost seconds, and the `hf-embed` command (a subpackage, so `hf_embed/__init__.py` runs first)
must answer `--help` without either.

The Auto classes and their mappings live in two modules, and nothing can look a model type up in a
mapping before the module that holds it has run, so registering right after each of them is imported
is as good as registering eagerly:

- `transformers.models.auto.configuration_auto` (`AutoConfig`, `CONFIG_MAPPING`): then `HfEmbedConfig`;
- `transformers.models.auto.modeling_auto` (every `AutoModel*` class and the `MODEL_*_MAPPING`s that
  pipelines and peft read): then `HfEmbedModel` and `HfEmbedForCausalLM`.

Only the public `register` calls are made, with the real classes, so `type(model)`, `isinstance`,
pickling and transformers' own checks see nothing unusual. A module already imported when `install()`
runs is registered with at once. For the others a `sys.meta_path` entry waits for those two exact
names, lets the other finders find them, and registers after the module's code has run; it removes
itself when both are done. It never imports anything on its own, and a failed registration is a
`RuntimeWarning`, never an error inside someone else's import.

The model files must not import the Auto modules when they are imported themselves (as
`register_for_auto_class` does; they carry `_auto_class` attributes instead): registration imports
the model files while the Auto module's import lock is held, and the opposite order in another thread
would deadlock.
"""

from __future__ import annotations

import sys
import threading
import warnings

# Where transformers defines the Auto classes (`AutoConfig.__module__`, `AutoModel.__module__`), the same
# since transformers 4.0; tests/test_auto_registration.py checks them against the installed version.
CONFIGURATION_AUTO = "transformers.models.auto.configuration_auto"
MODELING_AUTO = "transformers.models.auto.modeling_auto"


def _register_config() -> None:
    from transformers import AutoConfig

    from .configuration_hf_embed import HfEmbedConfig

    AutoConfig.register(HfEmbedConfig.model_type, HfEmbedConfig, exist_ok=True)


def _register_models() -> None:
    from transformers import AutoModel, AutoModelForCausalLM

    from .configuration_hf_embed import HfEmbedConfig
    from .modeling_hf_embed import HfEmbedForCausalLM, HfEmbedModel

    AutoModel.register(HfEmbedConfig, HfEmbedModel, exist_ok=True)
    AutoModelForCausalLM.register(HfEmbedConfig, HfEmbedForCausalLM, exist_ok=True)


_lock = threading.Lock()
_pending = {CONFIGURATION_AUTO: _register_config, MODELING_AUTO: _register_models}
_searching = threading.local()  # set while this thread asks the other finders (some call find_spec themselves)


def _run(name: str) -> None:
    """Run the registration that waits for module `name`, once, whichever thread gets here first."""
    with _lock:
        register = _pending.pop(name, None)
        if not _pending and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
    if register is None:
        return
    try:
        register()
    except Exception as error:  # never break the import that brought us here
        warnings.warn(
            f"hf_embed could not register with transformers' Auto classes after importing {name} ({error!r}); "
            "AutoConfig/AutoModel will not recognise model_type 'hf_embed' in this process",
            RuntimeWarning,
            stacklevel=2,
        )


class _Loader:
    """The module's own loader, then the registration once the module's code has run."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str):  # get_source, get_filename, is_package, ...
        if name == "loader":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # leave no trace of this wrapper
        self.loader.exec_module(module)
        _run(module.__name__)


class _Finder:
    """A `sys.meta_path` entry that answers only for the Auto modules still waited for."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in _pending or getattr(_searching, "active", False):
            return None
        _searching.active = True
        try:
            for finder in sys.meta_path:
                find_spec = None if finder is self else getattr(finder, "find_spec", None)
                spec = find_spec(fullname, path, target) if find_spec is not None else None
                if spec is not None:
                    break
            else:
                return None
        finally:
            _searching.active = False
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader)
        return spec

    def invalidate_caches(self) -> None:
        pass


_FINDER = _Finder()


def install() -> None:
    """Register now for the Auto modules already imported; wait for the others."""
    with _lock:
        if _pending and _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)  # first: it must see the names before another finder answers
    for name in list(_pending):
        if name in sys.modules:  # imported, or being imported by another thread (the registration's import waits)
            _run(name)
