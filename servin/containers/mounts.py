"""A container's mounts from its request, parsed and checked as dockerd's volume/mounts.

Pure logic: ``HostConfig.Binds`` (``src:dst[:opts]``), ``HostConfig.Mounts``,
``HostConfig.VolumesFrom`` and the anonymous volumes of ``Config.Volumes`` become the
container's mount points, in dockerd's order (volumes-from, binds, mounts, then the
image's volumes where nothing else is mounted). Volumes are named here but made by
the volumes manager; errors carry dockerd's messages.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any, Callable

import attrs

from servin.errors import InvalidArgument

RW_MODES = ("rw", "ro")
LABEL_MODES = ("z", "Z")
PROPAGATION_MODES = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
COPY_MODES = ("nocopy",)
CONSISTENCY_MODES = ("consistent", "cached", "delegated", "default")
DEFAULT_PROPAGATION = "rprivate"
MOUNT_TYPES = ("bind", "volume", "tmpfs")


@attrs.define
class MountPoint:
    """One mount of a container, as its record keeps it (dockerd's MountPoint)."""

    type: str                   # bind, volume, tmpfs
    destination: str
    source: str = ""            # a bind's host path; a volume's data directory
    name: str = ""              # the volume's name ("" until an anonymous one is made)
    driver: str = ""
    mode: str = ""              # the options as the client wrote them in Binds
    rw: bool = True
    propagation: str = ""
    copy_data: bool = True      # copy the image's content into an empty volume
    anonymous: bool = False     # removed with the container (rm -v, AutoRemove)
    non_recursive: bool = False
    create_source: bool = False  # a missing bind source is made at start (Binds only)
    tmpfs_options: str = ""

    def wire(self) -> dict[str, Any]:
        """Docker's MountPoint JSON (inspect and list)."""
        out: dict[str, Any] = {"Type": self.type}
        if self.name:
            out["Name"] = self.name
        out["Source"] = self.source
        out["Destination"] = self.destination
        if self.driver:
            out["Driver"] = self.driver
        out.update(Mode=self.mode, RW=self.rw, Propagation=self.propagation)
        return out


@attrs.frozen
class VolumeRequest:
    """How to make a mount's volume when it does not exist yet."""

    driver: str = ""
    options: dict[str, str] | None = None
    labels: dict[str, str] | None = None


@attrs.define
class RequestedMount:
    point: MountPoint
    volume: VolumeRequest | None = None  # for volume mounts


class _MountConfigError(InvalidArgument):
    pass


def _config_error(kind: str, message: str) -> InvalidArgument:
    return _MountConfigError(f'invalid mount config for type "{kind}": {message}')


def valid_mode(mode: str) -> bool:
    """linuxValidMountMode: known options, at most one of each kind."""
    if not mode:
        return True
    counts = dict.fromkeys(("rw", "label", "propagation", "copy", "consistency"), 0)
    for option in mode.split(","):
        for kind, known in (("rw", RW_MODES), ("label", LABEL_MODES),
                            ("propagation", PROPAGATION_MODES), ("copy", COPY_MODES),
                            ("consistency", CONSISTENCY_MODES)):
            if option in known:
                counts[kind] += 1
                break
        else:
            return False
    return all(count <= 1 for count in counts.values())


def _mode_option(mode: str, known: tuple[str, ...]) -> str | None:
    return next((o for o in mode.split(",") if o in known), None) if mode else None


def _check_target(kind: str, target: str) -> None:
    if not target:
        raise _config_error(kind, "field Target must not be empty")
    if not target.strip("/"):
        raise _config_error(kind, "invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise _config_error(kind, f"invalid mount path: '{target}' mount path must be absolute")


def tmpfs_data(options: dict[str, Any] | None, readonly: bool) -> str:
    """ConvertTmpfsOptions: ``ro``, ``mode=<octal>``, ``size=<n>[kmg]``."""
    options = options or {}
    out = ["ro"] if readonly else []
    mode, size = options.get("Mode") or 0, options.get("SizeBytes") or 0
    for field, value in (("Mode", mode), ("SizeBytes", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _config_error("tmpfs", f"invalid {field}: {value!r}")
    if mode:
        out.append(f"mode={mode:o}")
    if size:
        suffix = ""
        for unit in ("k", "m", "g"):
            if size % 1024:
                break
            size, suffix = size // 1024, unit
        out.append(f"size={size}{suffix}")
    return ",".join(out)


def parse_mount(cfg: Any, *, bind_source_must_exist: bool = True) -> RequestedMount:
    """One HostConfig.Mounts entry, checked as dockerd's validateMountConfig."""
    if not isinstance(cfg, dict):
        raise InvalidArgument("invalid Mounts: expected a list of objects")
    kind = cfg.get("Type") or ""
    target, source = cfg.get("Target") or "", cfg.get("Source") or ""
    readonly = bool(cfg.get("ReadOnly"))
    bind_options, volume_options = cfg.get("BindOptions"), cfg.get("VolumeOptions")
    if kind not in MOUNT_TYPES:
        raise _config_error(kind, "mount type unknown")
    _check_target(kind, target)
    destination = posixpath.normpath(target)
    if kind != "bind" and bind_options is not None:
        raise _config_error(kind, "field BindOptions must not be specified")
    if kind == "bind":
        if not source:
            raise _config_error(kind, "field Source must not be empty")
        propagation = (bind_options or {}).get("Propagation") or ""
        if propagation and propagation not in PROPAGATION_MODES:
            raise _config_error(kind, f"invalid propagation mode: {propagation}")
        if volume_options is not None:
            raise _config_error(kind, "field VolumeOptions must not be specified")
        if not source.startswith("/"):
            raise _config_error(kind, f"invalid mount path: '{source}' mount path must be "
                                      "absolute")
        if bind_source_must_exist and not os.path.lexists(source):
            raise _config_error(kind, f"bind source path does not exist: {source}")
        return RequestedMount(MountPoint(
            "bind", destination, source=posixpath.normpath(source), rw=not readonly,
            propagation=propagation or DEFAULT_PROPAGATION,
            non_recursive=bool((bind_options or {}).get("NonRecursive"))))
    if kind == "volume":
        if not source and readonly:
            raise _config_error(kind, "must not set ReadOnly mode when using anonymous volumes")
        volume_options = volume_options or {}
        driver_config = volume_options.get("DriverConfig") or {}
        request = VolumeRequest(driver=driver_config.get("Name") or "",
                                options=driver_config.get("Options") or None,
                                labels=volume_options.get("Labels") or None)
        return RequestedMount(MountPoint(
            "volume", destination, name=source, driver=request.driver, rw=not readonly,
            copy_data=not volume_options.get("NoCopy"), anonymous=not source), request)
    if source:
        raise _config_error(kind, "field Source must not be specified")
    return RequestedMount(MountPoint("tmpfs", destination, rw=not readonly,
                                     tmpfs_options=tmpfs_data(cfg.get("TmpfsOptions"),
                                                              readonly)))


def parse_bind(raw: str, volume_driver: str = "") -> RequestedMount:
    """One HostConfig.Binds entry, ``src:dst[:opts]``, as dockerd's ParseMountRaw."""
    invalid = InvalidArgument(f"invalid volume specification: '{raw}'")
    parts = raw.split(":", 3)
    if not parts[0] or len(parts) > 3:
        raise invalid
    if len(parts) == 1:
        source, target, mode = "", parts[0], ""
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            raise invalid  # a destination and a mode: volumes need a source
        (source, target), mode = parts, ""
    else:
        source, target, mode = parts
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    kind = "bind" if source.startswith("/") else "volume"
    cfg: dict[str, Any] = {"Type": kind, "Source": source, "Target": target,
                           "ReadOnly": _mode_option(mode, RW_MODES) == "ro"}
    if kind == "volume" and volume_driver:
        cfg["VolumeOptions"] = {"DriverConfig": {"Name": volume_driver}}
    if _mode_option(mode, COPY_MODES):
        cfg.setdefault("VolumeOptions", {})["NoCopy"] = True
    propagation = _mode_option(mode, PROPAGATION_MODES)
    if propagation:
        cfg["BindOptions"] = {"Propagation": propagation}
    try:
        requested = parse_mount(cfg, bind_source_must_exist=False)
    except _MountConfigError as exc:
        raise InvalidArgument(f"{invalid.message}: {exc.message}") from None
    requested.point.mode = mode
    if kind == "bind":
        requested.point.create_source = True
    elif not mode and volume_driver in ("", "local"):
        requested.point.mode = "z"  # dockerd's setBindModeIfNull for local volumes
    return requested


def parse_volumes_from(spec: str) -> tuple[str, bool]:
    """``container[:ro|rw]`` -> (container, read-write)."""
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if mode and (not valid_mode(mode) or _mode_option(mode, PROPAGATION_MODES)
                 or _mode_option(mode, COPY_MODES)):
        raise InvalidArgument(f"invalid mode: {mode}")
    return ref, _mode_option(mode, RW_MODES) != "ro"


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {field}: expected a list of strings")
    return value


def requested_mounts(config: dict[str, Any], host_config: dict[str, Any],
                     mounts_of: Callable[[str], list[MountPoint]]) -> list[RequestedMount]:
    """Every mount of a new container, in dockerd's order; ``mounts_of`` gives another
    container's mount points (VolumesFrom). Destinations are checked for duplicates."""
    by_destination: dict[str, RequestedMount] = {}
    for spec in _strings(host_config.get("VolumesFrom"), "VolumesFrom"):
        ref, rw = parse_volumes_from(spec)
        for other in mounts_of(ref):
            point = attrs.evolve(other, rw=other.rw and rw, copy_data=False, anonymous=False,
                                 create_source=False)
            by_destination[point.destination] = RequestedMount(point)
    explicit: set[str] = set()
    tmpfs = set(host_config.get("Tmpfs") or {})
    raw_mounts = host_config.get("Mounts") or []
    if not isinstance(raw_mounts, list):
        raise InvalidArgument("invalid Mounts: expected a list of objects")
    requested = [parse_bind(raw, host_config.get("VolumeDriver") or "")
                 for raw in _strings(host_config.get("Binds"), "Binds")]
    requested += [parse_mount(cfg) for cfg in raw_mounts]
    for mount in requested:
        destination = mount.point.destination
        if destination in explicit or destination in tmpfs:
            raise InvalidArgument(f"Duplicate mount point: {destination}")
        explicit.add(destination)
        by_destination[destination] = mount
    for target in sorted(config.get("Volumes") or {}):
        if not target.startswith("/"):
            raise InvalidArgument(f"invalid mount path: '{target}' mount path must be absolute")
        destination = posixpath.normpath(target)
        if destination == "/":
            raise InvalidArgument("invalid specification: destination can't be '/'")
        if destination in by_destination or destination in tmpfs:
            continue
        by_destination[destination] = RequestedMount(
            MountPoint("volume", destination, driver=host_config.get("VolumeDriver") or "",
                       anonymous=True), VolumeRequest(driver=host_config.get("VolumeDriver") or ""))
    return list(by_destination.values())
