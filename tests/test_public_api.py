"""fj's public API as static tools see it: the ``if TYPE_CHECKING:`` block of ``fa_jax/__init__.py``
imports exactly the lazily resolved names, and the public signatures defined in fa_jax are annotated."""

import ast
import functools
import importlib
import inspect
import sys
import types
from pathlib import Path


import fa_jax as fj

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "fa_jax" / "__init__.py"

def _type_checking_block() -> ast.If:
    tree = ast.parse(INIT.read_text(), filename=str(INIT))
    blocks = [n for n in tree.body if isinstance(n, ast.If) and isinstance(n.test, ast.Name)
              and n.test.id == "TYPE_CHECKING"]
    assert len(blocks) == 1, f"fa_jax/__init__.py needs one top-level `if TYPE_CHECKING:` block, has {len(blocks)}"
    return blocks[0]


def test_type_checking_block_names_every_public_name_from_its_home():
    block = _type_checking_block()
    others = [ast.unparse(n) for n in block.body if not isinstance(n, ast.ImportFrom)]
    assert not others, f"the TYPE_CHECKING block should only import, has: {others}"
    seen, bare = [], []
    for node in block.body:
        assert node.level == 0, f"use absolute imports: {ast.unparse(node)}"
        for a in node.names:
            if a.asname is None:  # `import x as x` marks a re-export for type checkers
                bare.append(f"{node.module}.{a.name}")
            seen.append((a.asname or a.name, node.module, a.name))
    assert not bare, f"import these `as` themselves (an explicit re-export): {bare}"
    expected = [(name, module, name) for module, names in fj._SOURCES.items() for name in names]
    expected += [(alias, module, attr) for alias, (module, attr) in fj._ALIASES.items()]
    dup = sorted({s[0] for s in seen if [t[0] for t in seen].count(s[0]) > 1})
    assert not dup, f"imported twice in the TYPE_CHECKING block: {dup}"
    line = "    from {1} import {2} as {0}".format
    missing = [line(*s) for s in sorted(set(expected) - set(seen))]
    extra = [line(*s) for s in sorted(set(seen) - set(expected))]
    assert not missing and not extra, ("the TYPE_CHECKING block of fa_jax/__init__.py is out of sync with "
                                       "_SOURCES/_ALIASES; add:\n" + "\n".join(missing) + "\nremove:\n"
                                       + "\n".join(extra))
    assert sorted((s[0] for s in seen), key=str.lower) == fj.__all__


def test_type_checking_block_imports_the_objects_fj_resolves():
    ns = {}
    block = _type_checking_block()
    exec(compile(ast.Module(body=block.body, type_ignores=[]), str(INIT), "exec"), ns)
    wrong = [n for n in fj.__all__ if ns[n] is not getattr(fj, n)]
    assert not wrong, f"the TYPE_CHECKING block imports other objects than fj resolves for: {wrong}"


def _home(obj) -> str:
    """The file, relative to the repository root, of the module that defines ``obj``."""
    mod = sys.modules.get(getattr(obj, "__module__", None) or "")
    path = getattr(mod, "__file__", None)
    return Path(path).resolve().relative_to(ROOT).as_posix() if path else "?"


def _ours(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "fa_jax"


def _constructor(cls):
    """The ``__init__`` (or ``__new__``) that fa_jax wrote or generated (dataclass) for ``cls``, else None."""
    for owner in cls.__mro__:
        for meth in ("__init__", "__new__"):
            f = owner.__dict__.get(meth)
            if f is None:
                continue
            f = getattr(f, "__func__", f)
            if _ours(owner) and inspect.isfunction(f) and f.__qualname__.startswith(owner.__qualname__ + "."):
                return f
            return None  # inherited from outside fa_jax (object, ValueError, typing's protocol __init__)
    return None


def _problems(qualname: str, fn, *, constructor: bool) -> list[str]:
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if constructor and params:
        params = params[1:]  # self, or __new__'s class
    bad = [p.name for p in params if p.annotation is inspect.Parameter.empty
           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("self", "cls")]
    if not constructor and sig.return_annotation is inspect.Signature.empty:
        bad.append("-> return")
    return [f"{qualname}({', '.join(bad)})"] if bad else []


def _public(mod: types.ModuleType) -> dict[str, object]:
    """A module's public names: its ``__all__``, else the names it defines that do not start with _."""
    names = getattr(mod, "__all__", None)
    if names is None:
        return {n: v for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None)
                == mod.__name__}
    return {n: getattr(mod, n) for n in names}


def _module_files() -> list[str]:
    """Every module of fa_jax, by name (their public names are API too)."""
    out = []
    for path in sorted((ROOT / "fa_jax").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        out.append(rel[:-3].removesuffix("/__init__").replace("/", "."))
    return out


def _api() -> dict[str, object]:
    """Every public name to check, by the first qualified name found: fj's, those of fj's modules
    (recursively through their ``__all__``), and those of every other module."""
    out, done = {}, set()
    todo = [("fj", {n: getattr(fj, n) for n in fj.__all__})]
    todo += [(m, {"": importlib.import_module(m)}) for m in _module_files()]
    while todo:
        prefix, names = todo.pop(0)
        for n, v in names.items():
            if isinstance(v, types.ModuleType):
                if v.__name__.startswith("fa_jax.") and v.__name__ not in done:
                    done.add(v.__name__)
                    todo.append((v.__name__, _public(v)))
            elif all(v is not w for w in out.values()):
                out[f"{prefix}.{n}"] = v
    return out


@functools.cache
def _violations() -> dict[str, list[str]]:
    """{home file: ["qualname(unannotated params, -> return)", ...]} over the public API defined in fa_jax."""
    out = {}
    for qualname, obj in _api().items():
        if inspect.isclass(obj):
            fn, constructor = _constructor(obj), True
            if fn is None or not _ours(obj):
                continue
        else:
            fn, constructor = inspect.unwrap(obj) if callable(obj) else None, False
            if not inspect.isfunction(fn) or not _ours(fn):
                continue  # data, re-exported third-party objects
        probs = _problems(qualname, fn, constructor=constructor)
        if probs:
            out.setdefault(_home(obj if constructor else fn), []).extend(probs)
    return out


def _report(v: dict[str, list[str]]) -> str:
    return "unannotated public signatures:\n" + "\n".join(f"  {f}: {', '.join(sorted(set(q)))}"
                                                           for f, q in sorted(v.items()))


def test_public_signatures_are_annotated():
    """Every parameter (but self/cls, *args, **kwargs) of a public function or constructor defined in
    fa_jax has a type annotation, and every function a return annotation."""
    v = _violations()
    assert not v, _report(v)


def test_the_api_walk_sees_the_modules():
    from fa_jax import checks

    api = list(_api().values())
    for obj in (fj.sweep, fj.Rule, fj.mlp, fj.InputError, fj.losses.get, fj.data.parity, fj.optim.optimizer,
                fj.init.register, checks.integer):
        assert any(obj is v for v in api), obj
