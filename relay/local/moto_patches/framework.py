"""The patch framework: :class:`Patch` and :class:`Target`, the moto version guard
:data:`SUPPORTED_MOTO`, and :func:`install` / :func:`check` / :func:`uninstall`.

A :class:`Patch` names one moto behaviour Relay corrects or one feature it adds:

- ``name``: a short label, used in errors;
- ``corrects``: the moto behaviour it corrects, or the feature it adds, in one sentence;
- ``moto_issue``: the moto GitHub issue that reports it, where one exists (else None);
- ``targets``: the ``(module, attribute)`` pairs it replaces (:class:`Target`);
- ``uses``: the moto internals its replacements call without replacing them;
- ``build``: the function that makes the replacements from moto's originals.

:func:`install` first checks every target and every used internal of every patch (the
module imports, the attribute exists, it is still moto's original, or for an added
attribute moto still lacks it); if any check fails it raises one
:class:`MotoPatchError` that names the patch, the target and the installed moto
version, and nothing is patched. Then it applies every patch; if one fails, every
attribute already replaced is put back. A second :func:`install` changes nothing (a
patched attribute is recognised as this package's own and is not wrapped again), and
:func:`uninstall` puts moto's originals back.

The patches themselves live in the modules of this package, one module per job; the
package's ``PATCHES`` lists them all and is what :func:`install` applies by default.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

#: The moto versions whose internals this package was written against (and pyproject.toml's pin,
#: and requirements/*.txt's lock). Exact: moto moves internals in patch releases (5.2.6 replaced
#: ``AWSError`` with ``ServiceException``; written against 5.2.5, ported to 5.2.6).
SUPPORTED_MOTO = SpecifierSet("==5.2.6")

_install_lock = threading.Lock()

# ----- where moto keeps the internals the patches target ---------------------------------------
_P = "moto.stepfunctions.parser."
_STS = _P + "asl.component.state.exec.state_task.service.state_task_service"
_SDK = _STS + "_aws_sdk"
_RESPONSES = "moto.stepfunctions.responses"
_EXECUTION = _P + "backend.execution"
_WORKER = _P + "backend.execution_worker"
_ENVIRONMENT = _P + "asl.eval.environment"
_ERRORS = _P + "asl.component.common.error_name."
_FAILURE = _ERRORS + "failure_event"
_API = _P + "api"
_EXECUTE_STATE = _P + "asl.component.state.exec.execute_state"
_EVENT_DETAIL = _P + "asl.eval.event.event_detail"
_EVENT_MANAGER = _P + "asl.eval.event.event_manager"


class MotoPatchError(RuntimeError):
    """moto is not what the patches were written against (an unsupported version, a
    moved internal, an attribute already replaced by someone else), or a patch failed
    while being applied (then nothing stays patched)."""


# ----- the patch registry ---------------------------------------------------------------------
_ABSENT: Any = object()
#: Where moto's issues live (``Patch.moto_issue`` must be one of them).
MOTO_ISSUES = "https://github.com/getmoto/moto/issues/"


@dataclass(frozen=True)
class Target:
    """One attribute: ``module`` (a dotted import path) and ``attribute`` (``"name"`` or
    ``"Class.name"``).

    ``new``: the patch adds the attribute, so moto must not define it. ``origin``: the
    package whose object the original must be (its ``__module__``, or a module's
    ``__name__``); ``None`` for plain data such as a dict, where only "not replaced by
    this package" can be checked.
    """

    module: str
    attribute: str
    new: bool = False
    origin: str | None = "moto"

    def __str__(self) -> str:
        return f"{self.module}.{self.attribute}"


#: moto's ``ActionResult``, which most replaced responses return.
_ACTION_RESULT = Target("moto.core.responses", "ActionResult")


@dataclass(frozen=True)
class Patch:
    """One correction of moto (see the module docstring for the fields).

    ``build(*originals)`` receives moto's current value of each target, in the order of
    ``targets`` (``_ABSENT`` for a ``new`` target), and returns the replacements in the
    same order.

    Raises:
        ValueError: a field is empty, ``moto_issue`` is not a moto issue URL, or a
            target is listed twice.
    """

    name: str
    corrects: str
    targets: tuple[Target, ...]
    build: Callable[..., tuple[Any, ...]]
    moto_issue: str | None = None
    uses: tuple[Target, ...] = ()
    #: A further precondition: returns the problem found, or None.
    check: Callable[[], str | None] | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("Patch.name: must not be empty")
        if not self.corrects.strip():
            raise ValueError(f"Patch {self.name!r}: corrects must name the moto behaviour it corrects")
        if not self.targets:
            raise ValueError(f"Patch {self.name!r}: targets must not be empty")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"Patch {self.name!r}: a target is listed twice")
        if self.moto_issue is not None and not self.moto_issue.startswith(MOTO_ISSUES):
            raise ValueError(f"Patch {self.name!r}: moto_issue must start with {MOTO_ISSUES}")



@dataclass(frozen=True)
class _Slot:
    """A target resolved on this machine."""

    target: Target
    owner: Any
    name: str
    value: Any  # what getattr returns (what the replacement calls), or _ABSENT
    raw: Any  # the object stored on the owner or inherited (getattr_static), or _ABSENT
    owned: bool  # stored on the owner itself, not inherited


@dataclass(frozen=True)
class _Applied:
    patch: str
    slot: _Slot
    replacement: Any


#: Every attribute replaced now: target → what was replaced and by what.
_applied: dict[Target, _Applied] = {}


def _resolve(target: Target) -> _Slot | str:
    """The target's slot, or the problem that stops it being patched."""
    try:
        owner: Any = importlib.import_module(target.module)
    except ImportError as exc:
        return f"module {target.module} cannot be imported ({exc})"
    *path, name = target.attribute.split(".")
    where = target.module
    for part in path:
        where += "." + part
        owner = getattr(owner, part, _ABSENT)
        if owner is _ABSENT:
            return f"{where} is gone"
    try:
        raw = inspect.getattr_static(owner, name)
    except AttributeError:
        raw = _ABSENT
    value = getattr(owner, name) if raw is not _ABSENT else _ABSENT
    owned = name in vars(owner)
    return _Slot(target, owner, name, value, raw, owned)


def _origin_of(value: Any) -> str | None:
    if inspect.ismodule(value):
        return value.__name__
    return getattr(value, "__module__", None)


def _state(slot: _Slot) -> str:
    """``"applied"`` (this package's replacement is in place), ``"original"``, or the problem."""
    record = _applied.get(slot.target)
    if record is not None and slot.raw is record.replacement:
        return "applied"
    target = slot.target
    if target.new:
        if slot.raw is not _ABSENT:
            return f"{target} now exists in moto: moto implements it, so this patch must be dropped or reworked"
        return "original"
    if slot.raw is _ABSENT:
        return f"{target} is gone"
    if target.origin is not None:
        origin = _origin_of(slot.value) or "?"
        if origin != target.origin and not origin.startswith(target.origin + "."):
            what = getattr(slot.value, "__qualname__", type(slot.value).__name__)
            return f"{target} is {origin}.{what}, not the {target.origin} original (replaced by something else)"
    return "original"


def _examine(patch: Patch) -> tuple[list[_Slot], list[str], bool]:
    """``(slots, problems, applied)``: the patch's resolved targets, what stops it being
    applied, and whether it is applied already."""
    slots: list[_Slot] = []
    problems: list[str] = []
    states: list[str] = []
    for target in patch.targets:
        slot = _resolve(target)
        if isinstance(slot, str):
            problems.append(f"target {target}: {slot}")
            continue
        state = _state(slot)
        if state not in ("applied", "original"):
            problems.append(f"target {target}: {state}")
        slots.append(slot)
        states.append(state)
    for used in patch.uses:
        slot = _resolve(used)
        if isinstance(slot, str):
            problems.append(f"uses {used}: {slot}")
        elif slot.raw is _ABSENT:
            problems.append(f"uses {used}: {used} is gone")
    if patch.check is not None and not problems:
        problem = patch.check()
        if problem:
            problems.append(problem)
    applied = bool(states) and all(s == "applied" for s in states)
    if not problems and "applied" in states and not applied:
        problems.append("partly applied: " + ", ".join(f"{s.target} {st}" for s, st in zip(slots, states, strict=True)))
    return slots, problems, applied


def _survey(patches: Sequence[Patch]) -> tuple[list[str], list[tuple[Patch, list[_Slot]]]]:
    """``(problems, pending)``: what stops ``patches`` being applied, and the patches not
    applied yet with their resolved targets."""
    problems: list[str] = []
    pending: list[tuple[Patch, list[_Slot]]] = []
    seen: dict[Target, str] = {}
    for patch in patches:
        for target in patch.targets:
            if target in seen:
                problems.append(f"patch {patch.name!r}: target {target} is also a target of patch {seen[target]!r}")
            seen.setdefault(target, patch.name)
        slots, found, applied = _examine(patch)
        problems += [f"patch {patch.name!r}: {problem}" for problem in found]
        if not applied:
            pending.append((patch, slots))
    return problems, pending


def _chosen(patches: Iterable[Patch] | None) -> list[Patch]:
    """``patches``, or every patch of the package (``relay.local.moto_patches.PATCHES``)."""
    if patches is None:
        from relay.local.moto_patches import PATCHES

        return list(PATCHES)
    return list(patches)


def check(patches: Iterable[Patch] | None = None) -> list[str]:
    """What stops :func:`install` applying ``patches`` (default: every patch of the package), one
    line per problem (``patch 'name': target module.attribute: …``); empty when none.
    Changes nothing."""
    with _install_lock:
        return _survey(_chosen(patches))[0]


def check_moto_version(version: str | None = None) -> str:
    """Return moto's version, or raise :class:`MotoPatchError` outside :data:`SUPPORTED_MOTO`."""
    import moto

    found = version or moto.__version__
    if Version(found) not in SUPPORTED_MOTO:
        raise MotoPatchError(
            f"moto {found} is outside the supported range {SUPPORTED_MOTO}; re-check relay/local/moto_patches/"
        )
    return found


def install(patches: Sequence[Patch] | None = None) -> None:
    """Apply ``patches`` (default: every patch of the package), all or nothing; thread-safe.

    Every target of every patch is checked before anything changes. A patch already
    applied is left as it is, so calling this again changes nothing.

    Raises:
        MotoPatchError: moto is outside :data:`SUPPORTED_MOTO`; or a check failed (the
            message names the moto version and, per problem, the patch and target;
            nothing was patched); or a patch failed while being applied (every
            attribute already replaced was put back).
    """
    chosen = _chosen(patches)
    with _install_lock:
        version = check_moto_version()
        problems, pending = _survey(chosen)
        if problems:
            raise MotoPatchError(
                f"moto {version} does not match relay/local/moto_patches/; nothing was patched:\n  "
                + "\n  ".join(problems)
            )
        done: list[_Applied] = []
        current = ""
        try:
            for patch, slots in pending:
                current = patch.name
                replacements = tuple(patch.build(*(slot.value for slot in slots)))
                if len(replacements) != len(slots):
                    raise ValueError(f"build returned {len(replacements)} replacements for {len(slots)} targets")
                for slot, replacement in zip(slots, replacements, strict=True):
                    setattr(slot.owner, slot.name, replacement)
                    record = _Applied(patch.name, slot, replacement)
                    done.append(record)
                    _applied[slot.target] = record
        except BaseException as exc:
            for record in reversed(done):
                _restore(record)
            if not isinstance(exc, Exception):
                raise
            raise MotoPatchError(
                f"moto {version}: patch {current!r} failed while being applied ({type(exc).__name__}: {exc}); "
                f"the {len(done)} attributes already replaced were restored"
            ) from exc


def _restore(record: _Applied) -> None:
    slot = record.slot
    if slot.owned:
        setattr(slot.owner, slot.name, slot.raw)
    else:
        delattr(slot.owner, slot.name)  # it was inherited (or, for a new target, absent)
    _applied.pop(slot.target, None)


def uninstall() -> None:
    """Put back every attribute :func:`install` replaced (newest first); changes nothing
    when nothing is installed. State kept by the patches (listeners, persistence hooks,
    caches) is left as it is."""
    with _install_lock:
        for record in reversed(list(_applied.values())):
            _restore(record)


def installed() -> list[str]:
    """The names of the patches applied now, in the order they were applied."""
    with _install_lock:
        return list(dict.fromkeys(record.patch for record in _applied.values()))

